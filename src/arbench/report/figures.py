"""The report's figures, where people would rather look than read: each model's samples, each
beside its nearest training image, at two or more screen pixels per image pixel; the likelihoods
with their intervals, bounds drawn as bounds; the metric check as a grid of passed and failed
checks; the error calibration with its intervals and the band a correct error falls in; the pair
matrix coloured by each pair's outcome; completions and training curves. Each saved where the
report's layout (`arbench.core.plan.LAYOUT`) puts it: PNG, and PDF beside the plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from scipy import stats  # noqa: E402

from arbench.core import plan  # noqa: E402
from arbench.core.contracts import CURVE  # noqa: E402
from arbench.core.files import atomic_write  # noqa: E402
from arbench.metrics.known_answers import in_standard_errors  # noqa: E402


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


def figure_path(dataset: str, kind: str) -> Path:
    """Where a figure goes, without its suffix: it is saved as PNG and PDF."""
    return Path(plan.path("figure", dataset=dataset, figure=kind)).with_suffix("")


# ---------------------------------------------------------------------------------------------
# Samples beside their nearest training images

SHEET_COLUMNS = 8  # samples a row; each above its nearest training image
SHEET_ROWS = 8
SHEET_WIDTH = 900  # CSS pixels a sheet may take before a page scales it down


def scale_for(side: int, columns: int = SHEET_COLUMNS) -> int:
    """Screen pixels per image pixel: at least 2, as many as a sheet of `columns` images of
    `side` pixels keeps within `SHEET_WIDTH`."""
    return max(2, SHEET_WIDTH // ((side + 2) * columns))


def sample_sheet(samples: np.ndarray, neighbours: np.ndarray, levels: int, title: str, out: Path):
    """`SHEET_ROWS` x `SHEET_COLUMNS` images, each above its nearest training image (a thin rule
    between the pair), every image pixel drawn as a square of `scale_for` screen pixels."""
    count = SHEET_ROWS * SHEET_COLUMNS
    samples, neighbours = samples[:count], neighbours[:count]
    height, width = samples.shape[2:]
    scale = scale_for(width)
    tile_w, tile_h, gap = width * scale, height * scale, 2 * scale
    header = 26
    rows = -(-len(samples) // SHEET_COLUMNS)
    sheet = Image.new(
        "RGB",
        (SHEET_COLUMNS * (tile_w + gap), header + rows * (2 * tile_h + 2 * gap)),
        "white",
    )
    for index, (sample, neighbour) in enumerate(zip(samples, neighbours, strict=True)):
        left = (index % SHEET_COLUMNS) * (tile_w + gap)
        top = header + (index // SHEET_COLUMNS) * (2 * tile_h + 2 * gap)
        sheet.paste(pixels_image(sample, levels, scale), (left, top))
        sheet.paste(pixels_image(neighbour, levels, scale), (left, top + tile_h + 1))
    # PIL's bitmap default font drops spaces and colons at this size; its scalable one does not
    font = ImageFont.load_default(size=15)
    ImageDraw.Draw(sheet).text((4, 4), title, fill="black", font=font)
    out = Path(out).with_suffix(".png")
    atomic_write(out, lambda handle: sheet.save(handle, format="PNG"))
    return [out]


def pixels_image(image: np.ndarray, levels: int, scale: int) -> Image.Image:
    """One (C, H, W) image in levels as an RGB picture, each pixel a `scale` x `scale` square."""
    values = np.round(image.astype(np.float64) * 255 / (levels - 1)).astype(np.uint8)
    rgb = np.repeat(values, 3, axis=0) if values.shape[0] == 1 else values
    picture = Image.fromarray(rgb.transpose(1, 2, 0))
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


# ---------------------------------------------------------------------------------------------
# Numbers as pictures

OUTCOME_COLOURS = {
    "supported": "#1a9850",
    "contradicted": "#d73027",
    "equal within the margin": "#4575b4",
    "not resolved": "#8c8c8c",
    "not decided": "#d9d9d9",
    "not tested": "#d9d9d9",
}
# a cell's label: two short lines fit a cell whatever the outcome
IN_CELL = {
    "supported": "supported",
    "contradicted": "contra-\ndicted",
    "equal within the margin": "equal\n(margin)",
    "not resolved": "not\nresolved",
    "not decided": "not\ndecided",
    "not tested": "not\ntested",
}


def shaded(colour: str, share: float) -> tuple:
    """`colour` faded towards white as the share of resamples agreeing falls towards a half."""
    rgb = np.array(matplotlib.colors.to_rgb(colour))
    strength = min(max((share - 0.5) / 0.5, 0.0), 1.0) * 0.75 + 0.25
    return tuple(1 - strength * (1 - rgb))


def pair_matrix_axis(axis, matrix: dict, pair: list | None, title: str) -> None:
    """One dataset's pairs: rows autoregressive, columns mixtures; a cell's colour its outcome,
    its shade how often resamples agree; the primary pair framed."""
    rows, columns = list(matrix), sorted({b for cells in matrix.values() for b in cells})
    for i, a in enumerate(rows):
        for j, b in enumerate(columns):
            cell = matrix[a][b]
            share = (
                cell["agreement"]["share"]
                if cell["agreement"]["majority"] == cell["outcome"]
                else 1 - cell["agreement"]["share"]
            )
            colour = shaded(OUTCOME_COLOURS[cell["outcome"]], share)
            framed = pair is not None and [a, b] == list(pair)
            axis.add_patch(
                plt.Rectangle(
                    (j, i),
                    1,
                    1,
                    facecolor=colour,
                    edgecolor="black" if framed else "white",
                    linewidth=3 if framed else 1,
                )
            )
            dark = sum(colour) < 1.6
            axis.text(
                j + 0.5,
                i + 0.5,
                f"{IN_CELL[cell['outcome']]}\n{share:.0%}",
                ha="center",
                va="center",
                fontsize=7.5,
                color="white" if dark else "black",
            )
    axis.set_xlim(0, len(columns))
    axis.set_ylim(len(rows), 0)
    axis.set_xticks(np.arange(len(columns)) + 0.5, columns, rotation=30, ha="right")
    axis.set_yticks(np.arange(len(rows)) + 0.5, rows)
    axis.set_title(title, fontsize=11)
    axis.tick_params(length=0)
    for spine in axis.spines.values():
        spine.set_visible(False)


def pair_matrix(matrix: dict, pair: list | None, title: str, out: Path) -> list[Path]:
    """One dataset's pair matrix (`pair_matrix_axis`)."""
    columns = len({b for cells in matrix.values() for b in cells})
    figure, axis = plt.subplots(figsize=(1.3 * columns + 2, 0.7 * len(matrix) + 1.6))
    pair_matrix_axis(axis, matrix, pair, title)
    figure.tight_layout()
    return save(figure, out)


def pair_matrices(found: dict[str, dict], out: Path) -> list[Path]:
    """Every dataset's pair matrix side by side (`found`: dataset -> its verdict)."""
    shown = {d: f for d, f in found.items() if f["matrix"]}
    widths = [
        len({b for cells in f["matrix"].values() for b in cells}) + 1.2 for f in shown.values()
    ]
    figure, axes = plt.subplots(
        1,
        max(len(shown), 1),
        figsize=(max(0.95 * sum(widths) + 0.5, 3.6), 3.6),
        squeeze=False,
        gridspec_kw={"width_ratios": widths or [1]},
    )
    for axis, (dataset, verdict) in zip(axes[0], shown.items(), strict=False):
        pair = verdict["primary_pair"]["pair"] if verdict["primary_pair"] else None
        pair_matrix_axis(
            axis, verdict["matrix"], pair, f"{dataset}: {verdict['family']['outcome']}"
        )
    occurring = {
        c["outcome"] for f in shown.values() for r in f["matrix"].values() for c in r.values()
    }
    legend = [
        plt.Rectangle((0, 0), 1, 1, facecolor=c, label=o)
        for o, c in OUTCOME_COLOURS.items()
        if o in occurring
    ]
    if legend:  # a dataset with models of one family has no pairs, so no outcome to explain
        figure.legend(
            handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False
        )
    figure.suptitle(
        "Every autoregressive model (rows) against every mixture (columns); framed: the original "
        "study's pair; shade: share of resamples agreeing",
        fontsize=9,
    )
    figure.tight_layout(rect=(0, 0.08, 1, 0.92))
    return save(figure, out)


def check_grid(judged: dict[str, dict], parts: dict[str, dict], title: str, out: Path):
    """The metric check: a row per metric, a column per known-answer check, green where it
    passed and red where it failed (blank: not a check of the metric's part); beside each row,
    by how many standard errors it separates its part's defining set, and its role."""
    checks = []
    for found in judged.values():
        for name in found["parts"][found["part"]]["checks"]:
            if name not in checks:
                checks.append(name)
    metrics = sorted(judged, key=lambda m: (judged[m]["part"], m))
    grid = np.full((len(metrics), len(checks), 3), 1.0)
    for i, metric in enumerate(metrics):
        own = judged[metric]["parts"][judged[metric]["part"]]["checks"]
        for j, name in enumerate(checks):
            if name in own:
                grid[i, j] = matplotlib.colors.to_rgb(
                    "#1a9850" if own[name]["passed"] else "#d73027"
                )
    figure, axis = plt.subplots(figsize=(0.42 * len(checks) + 5.5, 0.32 * len(metrics) + 2.6))
    axis.imshow(grid, aspect="auto", interpolation="nearest")
    axis.set_xticks(range(len(checks)), checks, rotation=55, ha="right", fontsize=7)
    labels = []
    for metric in metrics:
        part = judged[metric]["part"]
        role = "primary" if parts[part]["primary"] == metric else ""
        separation = in_standard_errors(judged[metric]["separation"]["standard_errors"])
        labels.append(f"{metric} ({part[:3]}.) {separation:>7} {role}")
    axis.set_yticks(range(len(metrics)), labels, fontsize=8, family="monospace")
    for i, metric in enumerate(metrics):
        part = judged[metric]["part"]
        if parts[part]["primary"] == metric:
            axis.get_yticklabels()[i].set_fontweight("bold")
    axis.set_xticks(np.arange(len(checks)) - 0.5, minor=True)
    axis.set_yticks(np.arange(len(metrics)) - 0.5, minor=True)
    axis.grid(which="minor", color="white", linewidth=1)
    axis.tick_params(which="minor", length=0)
    axis.set_title(
        title + "\ngreen: passed; red: failed; white: not a check of the metric's part; SE: how "
        "many standard errors the metric puts its part's defining set behind real images",
        fontsize=9,
    )
    figure.tight_layout()
    return save(figure, out)


RATIO_TICKS = (0.1, 0.2, 0.5, 0.7, 1, 1.4, 2, 5, 10)  # decimals on the log axis, several a range


def calibration_plot(errors: dict, title: str, out: Path):
    """Each metric's ratio of the spread of independent draws to the error one set is given,
    with its 95% interval; the band a correct error's ratio falls in 95% of the time at the
    check's draws; red where the error was scaled up, blue where it was kept."""
    # a ratio of 0 (every draw gave the same value) has no place on a log axis: the table says it
    metrics = [m for m, f in errors["metrics"].items() if f["ratio"]]
    figure, axis = plt.subplots(figsize=(7, 0.3 * len(metrics) + 1.6))
    for i, metric in enumerate(metrics):
        found = errors["metrics"][metric]
        freedom = found["freedom"]
        band = (
            np.sqrt(stats.chi2.ppf(0.025, freedom) / freedom),
            np.sqrt(stats.chi2.ppf(0.975, freedom) / freedom),
        )
        axis.plot(band, [i, i], color="#dddddd", linewidth=9, solid_capstyle="butt", zorder=1)
        colour = "#d73027" if found["scale"] > 1 else "#4575b4"
        axis.plot([found["low"], found["high"]], [i, i], color=colour, linewidth=1.5, zorder=2)
        axis.plot(found["ratio"], i, "o", color=colour, markersize=5, zorder=3)
        note = f"{found['ratio']:.2f} " + (
            f"x{found['scale']:.2f}" if found["scale"] > 1 else "kept"
        )
        axis.text(1.02, i, note, transform=axis.get_yaxis_transform(), va="center", fontsize=7)
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_xscale("log")
    axis.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(RATIO_TICKS))
    axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_yticks(range(len(metrics)), metrics, fontsize=8)
    axis.set_ylim(len(metrics) - 0.5, -0.5)
    axis.set_xlabel("spread of independent draws / error one set is given (log)")
    axis.set_title(
        title + "\ngrey: where a correct error's ratio falls 95% of the time; red: scaled up",
        fontsize=9,
    )
    figure.tight_layout()
    return save(figure, out)


def likelihood_plot(models: dict[str, dict], title: str, out: Path):
    """Test NLL per model: every training run a small dot, the model's mean with its 95%
    interval; an upper bound drawn as a left-pointing triangle (the exact NLL lies at or left
    of it). `models`: model -> {"runs": [nll], "mean", "se", "bound", "family"}."""
    order = sorted(models, key=lambda m: models[m]["mean"])
    figure, axis = plt.subplots(figsize=(7, 0.38 * len(order) + 1.4))
    for i, model in enumerate(order):
        found = models[model]
        colour = "#1f78b4" if found["family"] == "autoregressive" else "#e08214"
        axis.plot(found["runs"], [i] * len(found["runs"]), ".", color=colour, alpha=0.5)
        marker = "<" if found["bound"] else "o"
        axis.errorbar(
            found["mean"],
            i,
            xerr=1.96 * found["se"],
            fmt=marker,
            color=colour,
            markersize=7,
            capsize=3,
        )
    axis.set_yticks(
        range(len(order)),
        [f"{m}{' (bound)' if models[m]['bound'] else ''}" for m in order],
        fontsize=9,
    )
    axis.set_ylim(len(order) - 0.5, -0.5)
    axis.set_xlabel("test NLL, nats/image (lower is better)")
    axis.set_title(title + " (blue: autoregressive, orange: mixture; ◀ an upper bound)", fontsize=9)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return save(figure, out)
