"""Your samples, judged beside ours, without a model: `arbench judge SAMPLES --run RESULTS
--dataset D --out judged.csv`.

SAMPLES is an `.npz` of images (its `samples` array, or its only array: uint8 (N, C, H, W) on
the dataset's levels) or image files and folders of them, each put through the dataset's own
preprocessing (as `arbench score` does; an entry that is not a readable regular image is named and
skipped, an image far smaller than the dataset's or animated is warned of). A file whose images
are not of the dataset's shape or levels is refused, naming it.

The set is measured as the run measured its models (`arbench.metrics.measurement`): in the run's
feature spaces, against its test images, in draws of the run's set size (as many whole draws as
the set holds, up to the run's): with two draws or more their spread is the error, with one its
subsets' error as the run's error-bar check calibrated it. Then the run's rule
(`arbench.metrics.verdict`), with the primary metric and margin of each part its metric check
declared, compares the set with every model of the run: *richer* (more diverse, no less
faithful), *poorer*, *equal within the margin*, or *not resolved*. The CSV holds every metric of
the set, of real images and of every model; a figure shows the set beside real test images.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from pathlib import Path

import numpy as np

from arbench.core.cli import run_stage, stage_parser
from arbench.core.contracts import ERROR_CHECK, METRIC_CHECK, QUALITY
from arbench.core.files import atomic_write
from arbench.core.plan import METRICS, model_entry, part_of, path
from arbench.data.format import load_dataset
from arbench.data.splits import shown_test_images
from arbench.metrics.error_bars import calibrated
from arbench.metrics.measurement import Reference, measure, measure_draws
from arbench.metrics.spaces import FeatureSpaces
from arbench.metrics.verdict import (
    AUTOREGRESSIVE,
    CONTRADICTED,
    EQUAL,
    MIXTURE,
    NOT_RESOLVED,
    SUPPORTED,
    compare,
    declared,
    model_values,
    outcome,
    part_findings,
    run_values,
)
from arbench.report.figures import image_panel
from arbench.trained import prepared_images

log = logging.getLogger("arbench.judge")

# The rule's words for a set against a model: its outcomes with the set in the first place
WORDS = {SUPPORTED: "richer", CONTRADICTED: "poorer"}
FINDINGS = {AUTOREGRESSIVE: "yours", MIXTURE: "theirs"}
# The set beside held-out real images, by each part's primary metric: read as real, or worse
REAL_WORDS = {
    EQUAL: "reads as real (within the margin)",
    MIXTURE: "worse than real",
    AUTOREGRESSIVE: "better than real",
    NOT_RESOLVED: "not resolved against real",
}
FIELDS = ["set", "family", "metric", "part", "role", "value", "se", "finding"]
SHEET = 64


class NotTheDatasets(ValueError):
    """Images that are not of the dataset's shape or levels; the message names the file."""


def in_run(run: str | Path, kind: str, **wildcards) -> Path:
    """The path of a result file of the run in folder `run` (its `results/`)."""
    return Path(run) / Path(path(kind, **wildcards)).relative_to("results")


def npz_images(file: Path, data) -> np.ndarray:
    """The images of an `.npz`: its `samples` array, or its only array, checked against the
    dataset's shape and levels."""
    try:
        with np.load(file, allow_pickle=False) as found:
            names = list(found.files)
            name = "samples" if "samples" in names else names[0] if len(names) == 1 else None
            if name is None:
                raise NotTheDatasets(
                    f"{file}: holds {', '.join(names) or 'no array'}; name the images `samples`"
                )
            images = found[name]
    except (OSError, ValueError) as error:
        if isinstance(error, NotTheDatasets):
            raise
        raise NotTheDatasets(f"{file}: not a readable .npz ({error})") from None
    if images.ndim == 3 and data.shape[0] == 1:
        images = images[:, None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(data.shape):
        raise NotTheDatasets(
            f"{file}: images of shape {tuple(images.shape[1:])}, the dataset's are "
            f"{tuple(data.shape)} (channels, height, width)"
        )
    if not np.issubdtype(images.dtype, np.integer) or images.min() < 0:
        raise NotTheDatasets(f"{file}: values must be integer levels 0..{data.levels - 1}")
    if images.max() >= data.levels:
        raise NotTheDatasets(
            f"{file}: values up to {images.max()}, the dataset has {data.levels} levels "
            f"(0..{data.levels - 1})"
        )
    return images.astype(np.uint8)


def read_samples(paths: list[str], data, game: str | None = None):
    """(images, {entry: why skipped}, {file: warnings}) of the samples given."""
    if len(paths) == 1 and Path(paths[0]).suffix == ".npz":
        return npz_images(Path(paths[0]), data), {}, {}
    images, _, skipped, warned = prepared_images(paths, data.meta["spec"], data.shape, game)
    return images, skipped, warned


def set_values(images: np.ndarray, reference, size: int, draws: int, errors: dict) -> dict:
    """The set's value of every metric, measured as the run measured its models."""
    count = min(len(images) // size, draws)
    sets = [images[i * size : (i + 1) * size] for i in range(count)]
    if count >= 2:
        return run_values(measure_draws(sets, reference, classifier_draws=1), errors)
    found = measure(sets[0], reference, classifier_seeds=(0,))
    values = {}
    for metric in METRICS:
        if metric in found:
            calibration = errors["metrics"].get(metric)
            values[metric] = {
                "value": found[metric]["value"],
                "se": calibrated(found[metric]["se"], calibration),
                "df": (calibration or {}).get("freedom") or 1_000,
                "reference": found[metric].get("reference"),
            }
    return values


def against(yours: dict, theirs: dict, plan: dict) -> dict:
    """The run's rule with the set in the autoregressive side's place: richer, poorer, equal
    within the margin or not resolved, and each part's primary comparison."""
    parts = part_findings(yours, theirs, plan)
    found = outcome(parts)
    return {"outcome": WORDS.get(found, found), "parts": parts}


def judge(samples: list[str], run, dataset: str, out, figure=None, game=None) -> dict:
    data = load_dataset(in_run(run, "data", dataset=dataset))
    check = METRIC_CHECK.read(in_run(run, "metric_check", dataset=dataset))
    errors = ERROR_CHECK.read(in_run(run, "error_check", dataset=dataset))
    qualities = {
        file.stem: QUALITY.read(file)
        for file in sorted(in_run(run, "quality", dataset=dataset, model="x").parent.glob("*.json"))
    }
    if not qualities:
        raise FileNotFoundError(
            f"{run}: no sample-quality files of {dataset}; is it a finished run?"
        )
    images, skipped, warned = read_samples(samples, data, game)
    size = check["images_per_set"]
    if len(images) < size:
        raise NotTheDatasets(
            f"{len(images)} images ({', '.join(samples)}): the run measures sets of {size}; "
            f"give at least {size}"
        )
    reference = Reference.of(data, FeatureSpaces.load(in_run(run, "features", dataset=dataset)))
    draws = max(len(q["model"]["draws"]) for q in qualities.values())
    yours = set_values(images, reference, size, draws, errors)
    plan = declared(check, errors)
    models = model_values(qualities, errors)
    compared = {model: against(yours, values, plan) for model, values in models.items()}
    real = {
        part: compare(m, yours[m], plan["real"][m], plan["real"][m], chosen["margin"])
        for part, chosen in plan["parts"].items()
        if (m := chosen["primary"]) is not None and m in yours
    }
    roles = {
        metric: "primary" if chosen["primary"] == metric else "support"
        for chosen in plan["parts"].values()
        for metric in ([chosen["primary"]] if chosen["primary"] else []) + chosen["support"]
    }
    rows = []
    for name, values in {"yours": yours, "real (valid)": plan["real"], **models}.items():
        family = model_entry(name).family if name in models else ""
        for metric in (m for m in METRICS if m in values):
            finding = ""
            if name in compared and roles.get(metric) == "primary":
                part = compared[name]["parts"][part_of(metric)]["primary"]
                finding = FINDINGS.get(part["finding"], part["finding"]) if part else ""
            rows.append(
                {
                    "set": name,
                    "family": family,
                    "metric": metric,
                    "part": part_of(metric),
                    "role": roles.get(metric, "not used"),
                    "value": values[metric]["value"],
                    "se": values[metric]["se"],
                    "finding": finding,
                }
            )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(out), lambda handle: handle.write(text.getvalue().encode()))
    if figure is not None:
        shown = np.concatenate(
            [images[: SHEET // 2], data.test[shown_test_images(data, SHEET // 2)]]
        )
        image_panel(
            shown, data.levels, f"{dataset}: your images (top half), real test images", Path(figure)
        )
    summary = {
        "images": len(images),
        "skipped": {str(k): v for k, v in skipped.items()},
        "warnings": {str(k): v for k, v in warned.items()},
        "values": yours,
        "against": {m: found["outcome"] for m, found in compared.items()},
        "against_real": {part: REAL_WORDS[found["finding"]] for part, found in real.items()},
        "declared": plan["parts"],
    }
    print(describe(summary, models, plan))
    return summary


def describe(summary: dict, models: dict, plan: dict) -> str:
    """Where the set stands, in a few lines: its primary metrics beside real images' and every
    model's, and the rule's outcome against each family."""
    lines = [f"{summary['images']} images judged ({len(summary['skipped'])} skipped)."]
    for part, chosen in plan["parts"].items():
        metric = chosen["primary"]
        if metric is None:
            lines.append(f"{part}: no metric of the run passes its checks")
            continue
        yours = summary["values"][metric]
        others = ", ".join(f"{m} {v[metric]['value']:.3g}" for m, v in models.items())
        lines.append(
            f"{part} ({metric}, margin {chosen['margin']:.2g}): yours {yours['value']:.3g} "
            f"± {yours['se']:.2g}, {summary['against_real'][part]} "
            f"({plan['real'][metric]['value']:.3g}); {others}"
        )
    for family in (AUTOREGRESSIVE, MIXTURE):
        mine = {m: o for m, o in summary["against"].items() if model_entry(m).family == family}
        if mine:
            lines.append(
                f"against the {family} models: "
                + ", ".join(
                    f"{o} than {m}" if o in WORDS.values() else f"{o} with {m}"
                    for m, o in mine.items()
                )
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.judge", "Your samples measured and judged beside a run's.")
    parser.add_argument("samples", nargs="+", help="an .npz of images, or image files and folders")
    parser.add_argument("--run", required=True, help="a finished run's results folder")
    parser.add_argument("--dataset", required=True, help="the run's dataset the samples are of")
    parser.add_argument("--out", required=True, help="the CSV to write")
    parser.add_argument("--figure", help="a PNG of your images beside real test images")
    parser.add_argument("--game", help="Atari: the game whose play area a screen is cut to")
    args = parser.parse_args(argv)
    return run_stage(
        f"judge {' '.join(args.samples)}",
        lambda: judge(args.samples, args.run, args.dataset, args.out, args.figure, args.game),
        outputs=[args.out, args.figure],
        on_stop="Nothing was left half-written; run the same command again to redo it.",
    )


if __name__ == "__main__":
    sys.exit(main())
