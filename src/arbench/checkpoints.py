"""Model files and training checkpoints: written atomically, read without running foreign code.

Both are plain dicts of tensors and numbers, loaded with `torch.load(..., weights_only=True)`,
which refuses a pickle that would run code; such a file, or a truncated one, is reported by
name with what to do. `resolve_device` turns the `device` setting into a torch device.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

from arbench.files import atomic_write
from arbench.plan import SettingsError, model_from_checkpoint


class CheckpointError(ValueError):
    """A file that should hold a model or checkpoint does not hold one arbench wrote."""


def save(obj: dict, path: str | Path) -> None:
    atomic_write(Path(path), lambda handle: torch.save(obj, handle))


def load(path: str | Path, what: str = "model file", remedy: str = "") -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist{'; ' + remedy if remedy else ''}")
    try:
        with warnings.catch_warnings():  # torch's advice on pickle protocols is not ours to give
            warnings.simplefilter("ignore")
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own text goes on to suggest loading it with weights_only=False: never here
        raise CheckpointError(
            f"{path} is not a {what} that arbench wrote: it holds Python objects beyond tensors "
            "and plain values, which loading could run as code, so it was not loaded."
            f"{' ' + remedy if remedy else ''}"
        ) from None
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} is not a {what} that arbench wrote, or is damaged ({reason[:200]}); "
            f"it was not used.{' ' + remedy if remedy else ''}"
        ) from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} holds a {type(saved).__name__}, not an arbench {what}")
    return saved


def load_model(path: str | Path):
    """A trained model from a file written by the train stage."""
    saved = load(path, "model file", "Run the train stage again to rewrite it.")
    if "model" not in saved or "state" not in saved:
        raise CheckpointError(f"{path} is not an arbench model file (it has no model state)")
    return model_from_checkpoint(saved)


def check_fits(model, model_path, data, data_path) -> None:
    """Refuse a model trained on images of another shape or number of levels than `data`'s."""
    if tuple(model.shape) != data.shape or model.levels != data.levels:
        raise ValueError(
            f"{model_path} models images of shape {tuple(model.shape)} on {model.levels} "
            f"levels, but {data_path} holds {data.shape} on {data.levels}: the model was trained "
            "on other data; train it again on this dataset"
        )


def summary(path: str | Path) -> dict:
    """What the train stage recorded about the model in `path`."""
    return load(path).get("summary", {})


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise SettingsError(
            f"device {choice!r} was asked for, but CUDA is not available here; "
            "set device: auto (or cpu) in the config"
        )
    return torch.device(choice)
