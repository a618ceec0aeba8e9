"""The data stage: sources (download, generate, bundled) and the one dataset format."""

from arbench.data.format import Dataset, load_dataset, save_dataset

__all__ = ["Dataset", "load_dataset", "save_dataset"]
