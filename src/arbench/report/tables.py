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
from arbench.core.plan import METRICS, USER, model_entry
from arbench.metrics.error_bars import TOLERANCE
from arbench.metrics.known_answers import PROTOTYPE, REAL, RESOLVES
from arbench.metrics.verdict import family, voting_parts
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
            f"| {r['model']}{' (yours)' if r['origin'] == USER else ''} "
            f"| {r['nll_nats']:.2f} ± {r['nll_nats_se']:.2f} "
            f"| {r['bits_per_dim']:.4f} ± {r['bits_per_dim_se']:.4f} | {r['likelihood']} "
            f"| {bound} | {r['parameters'] or '':,} | {seconds} | {r['device'] or ''} "
            f"| {convergence.describe(r['training'])} | {rate} |"
        )
    return "\n".join(lines)


def quality_row(dataset: str, name: str, role: str, measured: dict, draw: str = "") -> dict:
    row = {"dataset": dataset, "set": name, "role": role, "draw": draw}
    for metric in METRICS:
        row[metric], row[f"{metric}_se"] = measured[metric]["value"], measured[metric]["se"]
    row["diversity"] = measured["diversity"]["value"]
    row["novelty"], row["novelty_se"] = measured["novelty"]["value"], measured["novelty"]["se"]
    row["copied_fraction"], row["images"] = measured["copied_fraction"], measured["images"]
    return row


# The two draws of a model's samples (`arbench.quality`), as the CSV's draw column names them
DRAWS = {"model": "shown", "selection": "choice"}


def quality_rows(quality: dict[str, dict], checks: dict[str, dict]) -> list[dict]:
    """Per dataset: a row per model and draw, then a row per known-answer set of the metric
    check."""
    rows = []
    for dataset, measured in quality.items():
        for key, draw in DRAWS.items():
            rows.extend(quality_row(dataset, m, "model", q[key], draw) for m, q in measured.items())
        sets = checks[dataset]["sets"]
        rows.extend(quality_row(dataset, name, "check", sets[name]) for name in sets)
    return rows


def number(value: float, se: float | None = None) -> str:
    text = f"{value:.3g}"
    return text if se is None else f"{text} ± {se:.2g}"


def quality_table(rows: list[dict]) -> str:
    lines = [
        "| set | " + " | ".join(SHOWN.values()) + " | novelty | copies |",
        "| --- |" + " --- |" * (len(SHOWN) + 2),
    ]
    for r in rows:
        cells = [number(r[m], r[f"{m}_se"]) for m in SHOWN]
        lines.append(
            f"| {r['set']} | " + " | ".join(cells) + f" | {number(r['novelty'], r['novelty_se'])} "
            f"| {r['copied_fraction']:.0%} |"
        )
    return "\n".join(lines)


def check_table(check: dict, errors: dict) -> str:
    """Each metric's checks, part by part: by how much a known-worse set came out worse (or a set
    that must not look richer came out no better), pass or fail; whether the set size resolves
    one Gaussian by itself and the error bar matched the spread of independent draws; the parts
    it votes in; and whether it scores the prototypes beyond real images (read against real, no
    gain)."""
    lines = [
        "| metric | part | checks | resolves | error bar | votes in | prototypes beyond real |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    real, prototypes = check["sets"][REAL], check["sets"][PROTOTYPE]
    votes = voting_parts(check, errors)
    for metric, judged in check["metrics"].items():
        power = judged[RESOLVES]
        ratio = errors["metrics"][metric]["ratio"]
        error_bar = "unchecked" if ratio is None else f"{ratio:.2f}x"
        if not errors["metrics"][metric]["within"]:
            error_bar = f"**{error_bar}**"
        beyond = (
            f"yes ({number(prototypes[metric]['value'])} against real's "
            f"{number(real[metric]['value'])}): read against real"
            if judged["prototypes_beyond_real"]
            else "no"
        )
        for index, (part, found) in enumerate(judged["parts"].items()):
            cells = []
            for name, result in found["checks"].items():
                mark = "yes" if result["passed"] else "**no**"
                if "worse_by" in result:
                    detail = f" (worse by {number(result['worse_by'], result['se'])})"
                elif "better_by" in result:
                    ahead = result["better_by"]
                    side = "ahead of" if ahead > 0 else "behind"
                    detail = f" ({side} real by {number(abs(ahead), result['se'])})"
                elif result.get("failed"):
                    detail = f" (fails {', '.join(result['failed'])})"
                else:
                    detail = ""
                cells.append(f"{name}: {mark}{detail}")
            shared = (
                (
                    f"{'yes' if power['passed'] else '**no**'} ({power['standard_errors']:.1f} SE)",
                    error_bar,
                    ", ".join(votes[metric]) or "none",
                    beyond,
                )
                if index == 0
                else ("", "", "", "")
            )
            lines.append(
                f"| {metric if index == 0 else ''} | {part}: "
                f"{'passed' if found['passed'] else '**failed**'} | {'; '.join(cells)} | "
                + " | ".join(shared)
                + " |"
            )
    return "\n".join(lines)


def error_table(errors: dict) -> str:
    """The error-bar check: per metric and source, the spread of the values of independent draws
    beside the standard error one set is given."""
    sources = list(next(iter(errors["metrics"].values()))["sources"])
    header = " | ".join(
        f"{source}: spread / given SE ({errors['draws'] and len(errors['draws'][source])} draws)"
        for source in sources
    )
    lines = [
        f"| metric | {header} | pooled ratio | within {TOLERANCE[0]:g}-{TOLERANCE[1]:g}x |",
        "| --- |" + " --- |" * (len(sources) + 2),
    ]
    for metric, judged in errors["metrics"].items():
        cells = [
            f"{number(found['spread'])} / {number(found['given_se'])} ({found['ratio']:.2f}x)"
            for found in judged["sources"].values()
        ]
        ratio = "-" if judged["ratio"] is None else f"{judged['ratio']:.2f}x"
        within = "yes" if judged["within"] else "**no**"
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {ratio} | {within} |")
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


def judged_value(found: dict) -> str:
    """A value as the verdict read it; one beyond the real set's shows what it was."""
    text = number(found["value"], found["se"])
    if found["beyond_real"] is not None:
        text += f" (measured {number(found['beyond_real'])}, beyond real)"
    return text


def evidence_table(rows: list[dict]) -> str:
    lines = [
        "| metric | votes in | autoregressive | mixture | autoregressive better by | favours |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['metric']} | {', '.join(r['votes']) or 'none'} "
            f"| {r['autoregressive']} {judged_value(r['autoregressive_value'])} "
            f"| {r['mixture']} {judged_value(r['mixture_value'])} "
            f"| {number(r['better_by'], r['se'])} | {r['favours'] or 'neither'} |"
        )
    return "\n".join(lines)


def shares_text(found: dict[str, float]) -> str:
    return ", ".join(f"{outcome} {share:.0%}" for outcome, share in found.items())


def matrix_table(matrix: dict[str, dict[str, dict]]) -> str:
    """The verdict for every autoregressive training run (rows) against every mixture run
    (columns), on the shown draw, with the share of resamples that gives it."""
    columns = sorted({b for cells in matrix.values() for b in cells})
    lines = [
        "| autoregressive \\ mixture | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for a, cells in matrix.items():
        shown = []
        for b in columns:
            cell = cells[b]
            share = cell["shares"].get(cell["outcome"], 0.0)
            shown.append(f"{cell['outcome']} ({share:.0%})")
        lines.append(f"| {a} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))
