"""The report's tables: the likelihood and sample-quality CSV files and every markdown table of
the report, each from the stage outputs it shows, numbers as they were measured."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from arbench.core.contracts import LIKELIHOOD
from arbench.core.files import atomic_write
from arbench.core.plan import METRICS
from arbench.metrics.verdict import family
from arbench.training import convergence

TABLE_FIELDS = [
    "dataset",
    "model",
    "nll_nats",
    "nll_nats_se",
    "bits_per_dim",
    "bits_per_dim_se",
    "likelihood",
    "bound_nll_nats",
    "bound_monte_carlo_se",
    "test_images",
    "parameters",
    "train_seconds",
    "device",
    "training_ended_by",
    "training_epochs",
    "improvement_nats_per_epoch",
    "resumed",
    "finished_learning",
]

QUALITY_FIELDS = [
    "dataset",
    "set",
    "role",
    "draw",
    *(f"{metric}{part}" for metric in METRICS for part in ("", "_se")),
    "diversity",
    "novelty",
    "novelty_se",
    "copied_fraction",
    "images",
]

# The columns of the report's sample-quality tables (the CSV has every metric).
SHOWN = {
    "frechet_learned": "Fréchet (learned)",
    "frechet_contrastive": "Fréchet (contrastive)",
    "kid_learned": "KID (learned)",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
    "c2st_accuracy": "classifier accuracy",
    "frechet_pca": "Fréchet (PCA)",
}


def likelihood_rows(models: dict[str, dict[str, dict]]) -> list[dict]:
    rows = []
    for files in models.values():
        for run, inputs in files.items():
            metrics = LIKELIHOOD.read(inputs["metrics"])
            record = metrics.get("training")
            rows.append(
                {
                    **{k: metrics.get(k) for k in TABLE_FIELDS},
                    "model": run,  # the training run: nade, nade.r1, ...
                    "likelihood": "exact" if metrics["exact"] else "upper bound",
                    "training_ended_by": record and record["ended_by"],
                    "training_epochs": record and record["epochs"],
                    "improvement_nats_per_epoch": record and record["improvement_per_epoch"],
                    "resumed": record and record["resumed"],
                    "finished_learning": not convergence.unfinished(record),
                    "training": record,
                }
            )
    return rows


def paired_differences(nlls: dict[str, np.ndarray]) -> list[dict]:
    """Per-image NLL(a) - NLL(b) on the same test images, for each autoregressive vs mixture
    pair: its mean, standard error and 95% interval."""
    pairs = []
    for a in (m for m in nlls if family(m) == "autoregressive"):
        for b in (m for m in nlls if family(m) == "mixture"):
            difference = nlls[a] - nlls[b]
            se = float(difference.std(ddof=1) / math.sqrt(len(difference)))
            mean = float(difference.mean())
            pairs.append(
                {
                    "a": a,
                    "b": b,
                    "mean": mean,
                    "se": se,
                    "low": mean - 1.96 * se,
                    "high": mean + 1.96 * se,
                }
            )
    return pairs


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| model | NLL (nats/image) | bits/dim | likelihood | dequantization bound | parameters "
        "| train time | device | training ended by | NLL still falling by (nats/epoch) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        seconds = f"{r['train_seconds']:.0f} s" if r["train_seconds"] is not None else ""
        bound = ""
        if r.get("bound_nll_nats") is not None:
            bound = f"{r['bound_nll_nats']:.2f} (Monte Carlo ± {r['bound_monte_carlo_se']:.2f})"
        rate = convergence.rate_text(r["training"])
        if not r["finished_learning"]:
            rate = f"**{rate}: unfinished**"
        lines.append(
            f"| {r['model']} | {r['nll_nats']:.2f} ± {r['nll_nats_se']:.2f} "
            f"| {r['bits_per_dim']:.4f} ± {r['bits_per_dim_se']:.4f} | {r['likelihood']} "
            f"| {bound} | {r['parameters'] or '':,} | {seconds} | {r['device'] or ''} "
            f"| {convergence.describe(r['training'])} | {rate} |"
        )
    return "\n".join(lines)


def quality_row(dataset: str, name: str, role: str, measured: dict, draw="") -> dict:
    """A row of the sample-quality table: a check set (values with errors) or one draw of a
    training run's samples (values; the classifier where it was run on that draw)."""
    row = {"dataset": dataset, "set": name, "role": role, "draw": draw}
    for metric in METRICS:
        found = measured.get(metric)
        if isinstance(found, dict):
            row[metric], row[f"{metric}_se"] = found["value"], found.get("se")
        elif found is not None:
            row[metric] = found
    if "novelty" in measured:
        row["novelty"], row["novelty_se"] = measured["novelty"]["value"], measured["novelty"]["se"]
        row["diversity"] = measured["diversity"]["value"]
        row["copied_fraction"], row["images"] = measured["copied_fraction"], measured["images"]
    return row


def draw_rows(dataset: str, run: str, quality: dict) -> list[dict]:
    """One row per draw of a training run's samples."""
    model = quality["model"]
    rows = []
    for index, values in enumerate(model["draws"]):
        found = dict(values)
        if index < len(model["c2st_accuracy"]):
            found["c2st_accuracy"] = model["c2st_accuracy"][index]
        if index == 0:
            found.update({k: model[k] for k in ("novelty", "diversity", "copied_fraction")})
            found["images"] = model["images"]
        rows.append(quality_row(dataset, run, "model", found, index))
    return rows


def quality_rows(quality: dict[str, dict], checks: dict[str, dict]) -> list[dict]:
    """Per dataset: a row per training run and draw, then a row per known-answer set of the
    metric check."""
    rows = []
    for dataset, measured in quality.items():
        for run, found in measured.items():
            rows.extend(draw_rows(dataset, run, found))
        sets = checks[dataset]["sets"]
        rows.extend(quality_row(dataset, name, "check", sets[name]) for name in sets)
    return rows


def number(value: float, se: float | None = None) -> str:
    """A value with its standard error, the value's digits following the error's; an error of
    zero says that no spread was measurable."""
    if se is None or not math.isfinite(se):
        return f"{value:.3g}"
    if se == 0:
        return f"{value:.3g} (no spread measurable)"
    places = max(0, 1 - math.floor(math.log10(se)))
    return f"{value:.{places}f} ± {se:.{places}f}" if places < 8 else f"{value:.3g} ± {se:.1g}"


def quality_table(values: dict[str, dict], metrics: list[str]) -> str:
    """Every model's value of the metrics shown (mean over its runs and draws, ± its error)."""
    lines = [
        "| model | " + " | ".join(SHOWN.get(m, m) for m in metrics) + " |",
        "| --- |" + " --- |" * len(metrics),
    ]
    for model, found in values.items():
        cells = [number(found[m]["value"], found[m]["se"]) if m in found else "" for m in metrics]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_table(plan: dict) -> str:
    """Each metric's known-answer checks (with calibrated errors): passed or which failed, how far
    it separates its part's defining set from real images, the margin that gives, and its role."""
    lines = [
        "| metric | part | known-answer checks | separation | margin | role |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for metric, judged in plan["judged"].items():
        part = judged["part"]
        checks = judged["parts"][part]["checks"]
        failed = [name for name, found in checks.items() if not found["passed"]]
        passed = f"all {len(checks)} passed" if not failed else f"failed: {'; '.join(failed)}"
        chosen = plan["parts"][part]
        role = (
            "**primary**"
            if chosen["primary"] == metric
            else "support"
            if metric in chosen["support"]
            else "not used"
        )
        separation = judged["separation"]
        lines.append(
            f"| {metric} | {part} | {passed} | {separation['standard_errors']:.1f} SE "
            f"| {judged['margin']:.3g} | {role} |"
        )
    return "\n".join(lines)


def calibration_table(errors: dict) -> str:
    """The error-bar check: per metric and source, the spread of independent draws beside the
    error one set is given; the pooled ratio with its interval, and what was done with it."""
    metrics = errors["metrics"]
    sources = list(next(iter(metrics.values()))["sources"])
    draws = {source: len(errors["draws"][source]) for source in sources}
    lines = [
        "| metric | "
        + " | ".join(f"{s} ({draws[s]} draws)" for s in sources)
        + " | spread / error (95% interval) | done |",
        "| --- |" + " --- |" * (len(sources) + 2),
    ]
    for metric, found in metrics.items():
        cells = []
        for source in sources:
            one = found["sources"].get(source)
            cells.append("" if one is None else ratio_text(one["ratio"]))
        pooled = (
            "unchecked"
            if found["ratio"] is None
            else f"{found['ratio']:.2f} ({found['low']:.2f}-{found['high']:.2f})"
        )
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {pooled} | {found['reading']} |")
    return "\n".join(lines)


def ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "no spread, no error"
    return "error 0, draws spread" if math.isinf(ratio) else f"{ratio:.2f}x"


def comparison_rows(parts: dict) -> str:
    """A pair's comparison, part by part: the primary metric and its support, each with both
    models' values, the difference and its 95% interval, the margin and the finding."""
    lines = [
        "| part | metric | autoregressive | mixture | better by (95% interval) | margin "
        "| detectable | finding |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for part, found in parts.items():
        rows = ([found["primary"]] if found["primary"] else []) + found["support"]
        for index, row in enumerate(rows):
            name = f"**{row['metric']}**" if index == 0 else row["metric"]
            margin = "" if row["margin"] is None else f"{row['margin']:.3g}"
            low, high = row["interval"]
            lines.append(
                f"| {part if index == 0 else ''} | {name} | {row['ours']:.3g} | "
                f"{row['theirs']:.3g} | {row['better_by']:+.3g} ({low:+.3g} to {high:+.3g}) "
                f"| {margin} | {row['detectable']:.3g} | {row['finding']} |"
            )
    return "\n".join(lines)


def matrix_table(matrix: dict[str, dict[str, dict]]) -> str:
    """The outcome for every autoregressive model (rows) against every mixture (columns), with
    the majority outcome over resamples and its share where it differs."""
    columns = sorted({b for cells in matrix.values() for b in cells})
    lines = [
        "| autoregressive \\ mixture | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for a, cells in matrix.items():
        shown = []
        for b in columns:
            cell = cells[b]
            agreed = cell["agreement"]
            text = f"{cell['outcome']} ({agreed['share']:.0%} of resamples"
            if agreed["majority"] != cell["outcome"]:
                text += f" say {agreed['majority']}"
            shown.append(text + ")")
        lines.append(f"| {a} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def levels_text(values: list[float], levels: int) -> str:
    """Per-channel values in levels; for binary images the share of ones, to three places."""
    if levels == 2:
        return "/".join(f"{v:.3f}" for v in values)
    return "/".join(f"{v:.0f}" for v in values)


def pixel_table(test: dict, sets: dict[str, dict], levels: int) -> str:
    """Each set's pixels beside the test images': what a small classifier sees first."""
    binary = levels == 2
    lines = [
        "| set | "
        + (
            "share of ones | spread | roughness |"
            if binary
            else "mean level (per channel) | spread (per channel) | extreme levels | roughness |"
        ),
        "| --- | --- | --- | --- |" + ("" if binary else " --- |"),
    ]
    for name, found in {"real (test)": test, **sets}.items():
        extreme = "" if binary else f" {found['extreme_share']:.1%} |"
        roughness = f"{found['roughness']:.3f}" if binary else f"{found['roughness']:.2f}"
        lines.append(
            f"| {name} | {levels_text(found['channel_mean'], levels)} "
            f"| {levels_text(found['channel_sd'], levels)} |{extreme} {roughness} |"
        )
    return "\n".join(lines)


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))
