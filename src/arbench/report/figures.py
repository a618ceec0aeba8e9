"""The report's figures: sample grids beside real test images, each sample beside its nearest
training image, completions and training curves, each saved as PNG and PDF where the report's
layout (`arbench.core.plan.LAYOUT`) puts it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from arbench.core import plan  # noqa: E402
from arbench.core.contracts import CURVE  # noqa: E402
from arbench.core.files import atomic_write  # noqa: E402
from arbench.data.splits import shown_test_images  # noqa: E402
from arbench.metrics.measures import nearest  # noqa: E402
from arbench.metrics.spaces import flat  # noqa: E402


def image_grid(images: np.ndarray, levels: int, columns: int) -> np.ndarray:
    """(N, C, H, W) levels -> one (rows*H, columns*W, 3) float image in [0, 1], 1-pixel gaps."""
    n, channels, height, width = images.shape
    rows = -(-n // columns)
    scaled = images.astype(np.float64) / (levels - 1)
    if channels == 1:
        scaled = np.repeat(scaled, 3, axis=1)
    grid = np.ones((rows * (height + 1) - 1, columns * (width + 1) - 1, 3))
    for index, image in enumerate(scaled):
        top, left = (index // columns) * (height + 1), (index % columns) * (width + 1)
        grid[top : top + height, left : left + width] = image.transpose(1, 2, 0)
    return grid


def save(figure, out: Path) -> list[Path]:
    """PNG for reading, PDF as the vector version, each written atomically."""
    paths = [out.with_suffix(".png"), out.with_suffix(".pdf")]
    for path in paths:
        atomic_write(
            path,
            lambda handle, kind=path.suffix[1:]: figure.savefig(
                handle, format=kind, dpi=150, bbox_inches="tight"
            ),
        )
    plt.close(figure)
    return paths


def image_panel(images: np.ndarray, levels: int, title: str, out: Path) -> list[Path]:
    """One grid of images, as square as their number allows."""
    columns = int(np.ceil(np.sqrt(len(images))))
    rows = -(-len(images) // columns)
    figure, axis = plt.subplots(figsize=(0.5 * columns + 1, 0.5 * rows + 1))
    axis.imshow(image_grid(images, levels, columns), interpolation="nearest")
    axis.set_title(title, fontsize=10)
    axis.axis("off")
    return save(figure, out)


def sample_panels(
    real: np.ndarray,
    samples: dict[str, np.ndarray],
    levels: int,
    title: str,
    out: Path,
    count: int = 36,
) -> list[Path]:
    """One panel per source, the same number of images at the same scale, real ones first."""
    panels = {"real (test)": real[:count], **{name: s[:count] for name, s in samples.items()}}
    columns = int(np.ceil(np.sqrt(count)))
    figure, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9))
    for axis, (name, images) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        axis.imshow(image_grid(images, levels, columns), interpolation="nearest")
        axis.set_title(name, fontsize=12)
        axis.axis("off")
    figure.suptitle(title, fontsize=13)
    return save(figure, out)


def read_curves(path: Path) -> dict[str, list[float]]:
    """Per epoch its train NLL, and per validated epoch (`valid_epoch`) its valid NLL."""
    rows = CURVE.read(path)
    validated = [r for r in rows if r["valid_nll"]]
    return {
        "epoch": [float(r["epoch"]) for r in rows],
        "train_nll": [float(r["train_nll"]) for r in rows],
        "valid_epoch": [float(r["epoch"]) for r in validated],
        "valid_nll": [float(r["valid_nll"]) for r in validated],
    }


def training_curves(curves: dict[str, Path], title: str, out: Path) -> list[Path]:
    """Train (dashed) and valid (solid) NLL per epoch, one colour per model."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for index, (name, path) in enumerate(curves.items()):
        curve = read_curves(path)
        colour = f"C{index}"
        axis.plot(curve["valid_epoch"], curve["valid_nll"], color=colour, label=f"{name} valid")
        axis.plot(
            curve["epoch"], curve["train_nll"], color=colour, linestyle="--", label=f"{name} train"
        )
    axis.set_xlabel("epoch")
    axis.set_ylabel("NLL (nats / image, log scale)")
    axis.set_yscale("log")
    axis.set_title(title)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return save(figure, out)


def nearest_panels(
    pairs: dict[str, tuple[np.ndarray, np.ndarray]], levels: int, title: str, out: Path
) -> list[Path]:
    """Per model, a row of samples above a row of their nearest training images."""
    figure, axes = plt.subplots(len(pairs), 1, figsize=(7, 1.9 * len(pairs)), squeeze=False)
    for axis, (name, (samples, neighbours)) in zip(axes[:, 0], pairs.items(), strict=True):
        columns = len(samples)
        stacked = np.concatenate([samples, neighbours])
        axis.imshow(image_grid(stacked, levels, columns), interpolation="nearest")
        axis.set_title(f"{name} (top) and their nearest training images (bottom)", fontsize=10)
        axis.axis("off")
    figure.suptitle(title, fontsize=12)
    return save(figure, out)


def completion_panels(
    originals: np.ndarray,
    hidden: np.ndarray,
    completions: dict[str, np.ndarray],
    levels: int,
    title: str,
    out: Path,
) -> list[Path]:
    """One panel per column group: the test images, the same with the hidden rows grey, then
    each model's completions of them (one test image per row, its completions side by side)."""
    masked = originals.astype(np.float64).reshape(len(originals), -1).copy()
    masked[:, hidden] = (levels - 1) / 2  # grey: what the models did not see
    panels = {
        "test image": (originals, 1),
        "what the models see": (masked.reshape(originals.shape), 1),
        **{
            name: (filled.reshape(-1, *filled.shape[2:]), filled.shape[1])
            for name, filled in completions.items()
        },
    }
    widths = [columns for _, columns in panels.values()]
    figure, axes = plt.subplots(
        1,
        len(panels),
        figsize=(1.2 * sum(widths) + 0.6 * len(panels), 0.8 * len(originals) + 1),
        gridspec_kw={"width_ratios": widths},
    )
    for axis, (name, (images, columns)) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        axis.imshow(image_grid(images, levels, columns), interpolation="nearest")
        axis.set_title(name, fontsize=10)
        axis.axis("off")
    figure.suptitle(title, fontsize=12)
    return save(figure, out)


NEIGHBOUR_PANEL_SAMPLES = 8

GRID_IMAGES = 36


def neighbour_pairs(data, samples: dict[str, np.ndarray], quality: dict[str, dict]) -> dict:
    """Real test images, then the first samples of each model, each above its nearest training
    image (the samples' as the quality stage found them): what a copy would look like."""
    real = data.test[shown_test_images(data, NEIGHBOUR_PANEL_SAMPLES)]
    _, index = nearest(flat(real, data.levels), flat(data.train, data.levels))
    pairs = {"real (test)": (real, data.train[index])}
    for model, images in samples.items():
        index = quality[model]["model"]["nearest_train_index"][:NEIGHBOUR_PANEL_SAMPLES]
        pairs[model] = (images[: len(index)], data.train[index])
    return pairs


def figure_path(dataset: str, kind: str) -> Path:
    """Where a figure goes, without its suffix: it is saved as PNG and PDF."""
    return Path(plan.path("figure", dataset=dataset, figure=kind)).with_suffix("")
