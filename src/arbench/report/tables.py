"""The report's tables: the likelihood and sample-quality CSV files (every training run and draw)
and the markdown tables of the report (every model, its runs pooled), each from the stage outputs
it shows. A number carries the digits its error allows; an error of zero says so in words; no
cell runs longer than `CELL` characters (what needs more goes to a note said once)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from arbench.core.contracts import LIKELIHOOD
from arbench.core.files import atomic_write
from arbench.core.plan import METRICS, USER, model_entry
from arbench.metrics.known_answers import in_standard_errors
from arbench.metrics.verdict import GATES, family
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
    "origin",  # arbench's model, or the user's (a class named in the config or an entry point)
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
    "ndb": "NDB",
    "ndb_jsd": "NDB JSD",
    "class_histogram": "class histogram",
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
                    "origin": model_entry(run).origin,
                    "training": record,
                }
            )
    return rows


CELL = 60  # the most characters a table cell of the report holds


def model_likelihoods(rows: list[dict]) -> dict[str, dict]:
    """Per model, its training runs' test NLLs pooled: their mean, the larger of the spread
    between runs and the runs' own error, whether it is a bound, and how its trainings ended."""
    models: dict[str, dict] = {}
    for row in rows:
        model = row["model"].partition(".r")[0]
        found = models.setdefault(
            model,
            {
                "runs": [],
                "ses": [],
                "bits": [],
                "bound": row["likelihood"] != "exact",
                "family": family(model),
                "ended": [],
                "falls": [],
                "unfinished": [],
                "yours": row.get("origin") == USER,
            },
        )
        found["runs"].append(row["nll_nats"])
        found["ses"].append(row["nll_nats_se"])
        found["bits"].append(row["bits_per_dim"])
        found["ended"].append(row["training_ended_by"])
        if row.get("improvement_nats_per_epoch") is not None:
            found["falls"].append(row["improvement_nats_per_epoch"])
        if not row["finished_learning"]:
            found["unfinished"].append(row["model"])
    for found in models.values():
        runs = np.array(found["runs"])
        between = runs.std(ddof=1) / math.sqrt(len(runs)) if len(runs) > 1 else 0.0
        within = math.sqrt(sum(se**2 for se in found["ses"])) / len(runs)
        found.update(mean=float(runs.mean()), se=float(max(between, within)))
        found["bits_mean"] = float(np.mean(found["bits"]))
    return models


def likelihood_table(models: dict[str, dict]) -> str:
    """Each model's test NLL over its runs, best first, with how its trainings ended."""
    lines = [
        "| model | test NLL, nats/image | bits/dim | likelihood | trainings | valid NLL's fall "
        "at the end, nats/epoch (share of NLL) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for model in sorted(models, key=lambda m: models[m]["mean"]):
        found = models[model]
        ended = sorted(set(e or "?" for e in found["ended"]))
        runs = len(found["runs"])
        training = (
            f"{len(found['unfinished'])} of {runs} unfinished"
            if found["unfinished"]
            else f"{runs} of {runs} finished ({', '.join(ended)})"
        )
        name = f"{model} (yours)" if found["yours"] else model
        lines.append(
            f"| {name} | {number(found['mean'], found['se'])} | {found['bits_mean']:.4f} "
            f"| {'upper bound' if found['bound'] else 'exact'} | {training} "
            f"| {final_fall(found)} |"
        )
    return "\n".join(lines)


def final_fall(found: dict) -> str:
    """The fastest fall of the valid NLL at the end of any of the model's runs (per epoch, or EM
    iteration), in nats and as a share of the NLL: what decides whether it finished learning."""
    if not found["falls"]:
        return ""
    fastest = max(found["falls"])
    if not found["mean"]:
        return f"≤ {fastest:.2g}"
    share = fastest / abs(found["mean"])
    # three digits: the rule's threshold is 0.05%, and a share beside it must say which side
    return f"≤ {fastest:.2g} ({share:.3%})" if share >= 1e-4 else f"≤ {fastest:.2g} (< 0.01%)"


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


def difference_matrix(nlls: dict[str, np.ndarray], bounds: set[str]) -> str:
    """Paired differences as one table: a row per autoregressive model, a column per mixture,
    each cell NLL(row) - NLL(column) per test image with its 95% interval. Against a mixture
    whose NLL is an upper bound the difference is a lower bound on the true one (marked ≥)."""
    pairs = paired_differences(nlls)
    rows = list(dict.fromkeys(p["a"] for p in pairs))
    columns = list(dict.fromkeys(p["b"] for p in pairs))
    cells = {(p["a"], p["b"]): p for p in pairs}
    lines = [
        "| NLL(row) − NLL(column) | "
        + " | ".join(f"{c} (bound)" if c in bounds else c for c in columns)
        + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for a in rows:
        shown = []
        for b in columns:
            p = cells[a, b]
            mark = "≥ " if b in bounds else ""
            shown.append(f"{mark}{p['mean']:+.1f} ({p['low']:+.1f} to {p['high']:+.1f})")
        lines.append(f"| {a} | " + " | ".join(shown) + " |")
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


NEGLIGIBLE = 1e-6  # of a value's size: an error below it is rounding, not a measured spread
NO_SPREAD = "†"
NO_SPREAD_NOTE = (
    f"{NO_SPREAD} every draw and test subset gave this value: no spread was measurable (a value "
    "at its boundary, such as a coverage of 1), so no error is shown."
)


def number(value: float, se: float | None = None) -> str:
    """A value with its standard error, the value's digits following the error's; an error of
    zero (or of rounding's size: a binomial error at an accuracy of 1) is marked `NO_SPREAD`, a
    note said once under the table (`NO_SPREAD_NOTE`)."""
    if se is None or not math.isfinite(se):
        return f"{value:.3g}"
    if se <= NEGLIGIBLE * max(1.0, abs(value)):
        return f"{value:.3g}{NO_SPREAD}"
    places = max(0, 1 - math.floor(math.log10(se)))
    return f"{value:.{places}f} ± {se:.{places}f}" if places < 8 else f"{value:.3g} ± {se:.1g}"


def direction(metric: str) -> str:
    """↓ where lower is better, ↑ where higher is."""
    return "↓" if METRICS[metric][0] == "lower" else "↑"


def quality_table(values: dict[str, dict], metrics: list[str]) -> str:
    """Every model's value of the metrics shown (mean over its runs and draws, ± its error),
    each column marked with the direction that is better."""
    lines = [
        "| model | " + " | ".join(f"{SHOWN.get(m, m)} {direction(m)}" for m in metrics) + " |",
        "| --- |" + " --- |" * len(metrics),
    ]
    for model, found in values.items():
        cells = [number(found[m]["value"], found[m]["se"]) if m in found else "" for m in metrics]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    if any(NO_SPREAD in line for line in lines[2:]):
        lines.append("\n" + NO_SPREAD_NOTE)
    return "\n".join(lines)


def declared_table(verdicts: dict[str, dict]) -> str:
    """Per dataset and part, the primary metric the metric check chose, by how many standard
    errors it separates the part's defining set from real images, and the margin it gives."""
    lines = [
        "| dataset | fidelity: primary (separation) | margin | diversity: primary (separation) "
        "| margin |",
        "| --- | --- | --- | --- | --- |",
    ]
    for dataset, found in verdicts.items():
        cells = []
        for part in ("fidelity", "diversity"):
            chosen = found["declared"][part]
            if chosen["primary"] is None:
                cells += ["none passes its checks", ""]
                continue
            separated = chosen["separation"]
            name = SHOWN.get(chosen["primary"], chosen["primary"])
            shown = (
                f"{abs(separated['gap']):.2g} = {in_standard_errors(separated['standard_errors'])}"
            )
            cells += [f"{name} ({shown})", f"{chosen['margin']:.2g}"]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_text(ratio: float) -> str:
    """A calibration ratio in two decimals, or three where two would round it onto 1 and hide on
    which side of 1 it lies (which decides whether its error is scaled up)."""
    return f"{ratio:.3f}" if f"{ratio:.2f}" == "1.00" and ratio != 1 else f"{ratio:.2f}"


def calibration_table(errors: dict[str, dict]) -> str:
    """The error-bar check of every dataset: per metric the ratio of the spread of independent
    draws to the error one set is given, its 95% interval, and what was done with the error."""
    datasets = list(errors)
    metrics = list(dict.fromkeys(m for found in errors.values() for m in found["metrics"]))
    lines = [
        "| metric | " + " | ".join(datasets) + " |",
        "| --- |" + " --- |" * len(datasets),
    ]
    for metric in metrics:
        cells = []
        for dataset in datasets:
            found = errors[dataset]["metrics"].get(metric)
            if found is None:
                cells.append("not measured")
            elif found["ratio"] is None:
                cells.append("no spread in any draw" if not found["at_boundary"] else "boundary")
            elif found["ratio"] == 0:
                cells.append("draws all equal: not measurable")
            else:
                done = f"x{found['scale']:.2f}" if found["scale"] > 1 else "kept"
                cells.append(
                    f"{ratio_text(found['ratio'])} ({found['low']:.2f}-{found['high']:.2f}) {done}"
                )
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def draws_sentence(errors: dict[str, dict]) -> str:
    return "; ".join(
        f"{dataset}: "
        + ", ".join(f"{source} {len(draws)}" for source, draws in found["draws"].items())
        for dataset, found in errors.items()
    )


def comparison_rows(parts: dict) -> str:
    """A pair's comparison: each part's primary metric, then any supporting metric that
    disagrees with it, with both models' values, the difference and its 95% interval, the margin,
    the smallest difference the comparison could detect, and the finding."""
    lines = [
        "| part | metric | autoregressive | mixture | autoregressive better by (95% interval) "
        "| margin | detectable | finding |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for part, found in parts.items():
        if found["primary"] is None:
            lines.append(f"| {part} | no metric passes its checks | | | | | | not tested |")
            continue
        disagreeing = [s for s in found["support"] if s["metric"] in found["disagree"]]
        for index, row in enumerate([found["primary"], *disagreeing]):
            shown = SHOWN.get(row["metric"], row["metric"])
            name = f"**{shown}**" if index == 0 else f"{shown} (support)"
            margin = "" if row["margin"] is None else f"{row['margin']:.2g}"
            low, high = row["interval"]
            lines.append(
                f"| {part if index == 0 else ''} | {name} | {row['ours']:.3g} | "
                f"{row['theirs']:.3g} | {row['better_by']:+.2g} ({low:+.2g} to {high:+.2g}) "
                f"| {margin} | {row['detectable']:.2g} | {row['finding']} |"
            )
    return "\n".join(lines)


def majority_elsewhere(cell: dict) -> bool:
    """Whether a measured pair's resamples mostly give an outcome other than its own."""
    return cell["outcome"] not in GATES and cell["agreement"]["majority"] != cell["outcome"]


def resamples_note(cell: dict) -> str:
    """How often resamples of seeds and draws give the majority outcome, in brackets, naming the
    majority where it is not the outcome; nothing for an outcome a gate gave (a model still
    learning, no diversity metric), which every resample repeats."""
    if cell["outcome"] in GATES:
        return ""
    agreed = cell["agreement"]
    if majority_elsewhere(cell):
        return f" (resamples: {agreed['majority']} {agreed['share']:.0%})"
    return f" ({agreed['share']:.0%} of resamples)"


def cell_text(cell: dict) -> str:
    """A pair's outcome and how often resamples give the majority outcome."""
    return cell["outcome"] + resamples_note(cell)


def matrix_table(matrix: dict[str, dict[str, dict]]) -> str:
    """The outcome for every autoregressive model (rows) against every mixture (columns), each
    with the majority outcome of the resamples and its share."""
    columns = sorted({b for cells in matrix.values() for b in cells})
    lines = [
        "| autoregressive \\ mixture | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for a, cells in matrix.items():
        lines.append(f"| {a} | " + " | ".join(cell_text(cells[b]) for b in columns) + " |")
    return "\n".join(lines)


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))
