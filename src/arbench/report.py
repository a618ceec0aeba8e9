"""The report stage: likelihood table, figures and `report.md` from the other stages' outputs.

`python -m arbench.report --inputs '{"data": {...}, "models": {...}, "skipped": {...}}'` reads
the files its rule lists (`arbench.plan.report_inputs`): per dataset its data file, and per model
its evaluate outputs (summary and per-image NLLs), samples, training curve and sample-quality
measurements. It writes the likelihood and sample-quality tables, the figures and `report.md`
where `arbench.plan.LAYOUT` puts them, with per dataset the verdict on the hypothesis drawn from
those numbers.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import sys
from datetime import date
from pathlib import Path

import numpy as np

from arbench import convergence
from arbench.cli import json_object, run_stage, stage_parser
from arbench.contracts import (
    COMPLETION,
    COMPLETIONS,
    ERROR_CHECK,
    LIKELIHOOD,
    METRIC_CHECK,
    NLLS,
    QUALITY,
    SAMPLES,
    VERDICTS,
)
from arbench.data.format import load_dataset
from arbench.data.splits import shown_test_images
from arbench.error_check import TOLERANCE
from arbench.files import atomic_write
from arbench.known_answers import (
    GAUSSIAN,
    PROTOTYPE,
    REAL,
    RESOLVES,
    RESOLVING_METRICS,
    RESOLVING_SES,
    trails_by,
)
from arbench.plan import METRICS, PARTS, model_entry, path, replicate_of
from arbench.plots import completion_panels, nearest_panels, sample_panels, training_curves
from arbench.sample_metrics import C2ST, flat, nearest
from arbench.verdict import (
    RESAMPLES,
    RULE,
    SHARE,
    describe_part,
    family,
    headline,
    pair_matrix,
    resampled,
    still_improving,
    verdict,
    voting_parts,
)

log = logging.getLogger("arbench.report")

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
NEIGHBOUR_PANEL_SAMPLES = 8
GRID_IMAGES = 36


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


def describe_pair(pair: dict, bound_b: bool) -> str:
    """What a paired difference shows. B's exact NLL is at most its bound, so a model worse than
    B's bound is worse than B, while one better than B's bound may or may not beat B."""
    a, b = pair["a"].upper(), pair["b"].upper()
    interval = f"{pair['mean']:+.2f} nats/image (95% CI {pair['low']:+.2f} to {pair['high']:+.2f})"
    if pair["high"] < 0 and not bound_b:
        verdict = f"{a} gives the test images a higher likelihood than {b}"
    elif pair["high"] < 0:
        verdict = (
            f"{a} is below {b}'s upper bound; {b}'s exact NLL may be lower still, "
            "so this alone does not rank them"
        )
    elif pair["low"] > 0:
        verdict = f"{b} gives the test images a higher likelihood than {a}"
        if bound_b:
            verdict += " (already by its upper bound, so surely by its exact NLL)"
    else:
        verdict = "the difference is not resolved at this number of test images"
    label = f"{b} bound" if bound_b else b
    return f"- NLL({a}) − NLL({label}) = {interval}: {verdict}."


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


def drift(found: dict, test: dict) -> float:
    """How far a set's per-channel mean and spread lie from the test images', in levels."""
    pairs = [*zip(found["channel_mean"], test["channel_mean"], strict=True)]
    pairs += [*zip(found["channel_sd"], test["channel_sd"], strict=True)]
    return float(np.mean([abs(a - b) for a, b in pairs]))


def classifier_note(check: dict, votes: list[str], measured: dict[str, dict], test: dict) -> str:
    """Where one Gaussian is told from real images less often than every model: the numbers,
    and where the classifier votes. A moment-matched Gaussian has the real images' mean and
    spread of every pixel by construction; how far each set's lie from the test images' is
    given beside each set's accuracy, not as its cause."""
    gaussian = check["sets"][GAUSSIAN]
    if not measured or not all(
        gaussian["c2st_accuracy"]["value"] < found["c2st_accuracy"]["value"]
        for found in measured.values()
    ):
        return ""
    closest = min(measured, key=lambda m: measured[m]["c2st_accuracy"]["value"])
    beside = ", ".join(
        f"{m} {drift(found['pixels'], test):.1f} levels off, told apart "
        f"{found['c2st_accuracy']['value']:.1%} of the time"
        for m, found in sorted(measured.items(), key=lambda item: drift(item[1]["pixels"], test))
    )
    where = (
        f"it votes here in {', '.join(votes)}"
        if votes
        else "it does not vote here (see the check table for why)"
    )
    return (
        f"One Gaussian is told from real images less often by the classifier "
        f"({gaussian['c2st_accuracy']['value']:.3f}) than any model's samples (the closest: "
        f"{closest}, {measured[closest]['c2st_accuracy']['value']:.3f}); {where}. The Gaussian "
        "reproduces the mean and spread of every pixel of the training images by construction: "
        f"its per-channel mean level and spread lie {drift(gaussian['pixels'], test):.1f} levels "
        f"from the test images' on average; the models': {beside}. How far a set's pixel "
        "statistics drift does not order how often it is caught, so the classifier sees more "
        "than brightness and contrast (table below).\n"
    )


def resolving_sentence(check: dict, errors: dict) -> str:
    """By how many standard errors one Gaussian trails real images at this set size."""
    votes = voting_parts(check, errors)
    right = [
        m
        for m in check["metrics"]
        if check["metrics"][m]["sound"] and errors["metrics"][m]["within"]
    ]
    if not right:
        return (
            f"No metric ranked the known sets right with a checked error bar at "
            f"{check['images_per_set']} images a set."
        )
    shown = ", ".join(f"{m} {trails_by(m, check['sets']):.1f}" for m in right)
    voting = [m for m in votes if votes[m]]
    verdict = (
        "enough to resolve the question"
        if len(voting) >= RESOLVING_METRICS
        else f"**too few to resolve the question at this size** ({RESOLVING_METRICS} metrics "
        f"beyond {RESOLVING_SES:g} standard errors are needed)"
    )
    return (
        f"Resolving power at {check['images_per_set']} images a set: on the metrics that rank "
        f"the known sets right with a checked error bar, one Gaussian trails the real images by "
        f"{shown} standard errors (a metric votes beyond {RESOLVING_SES:g}); {len(voting)} vote: "
        f"{verdict}."
    )


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


def verdict_section(
    dataset: str,
    judged: dict[str, dict],
    selection: dict[str, dict],
    check: dict,
    errors: dict,
    unfinished: dict[str, dict | None],
) -> tuple[str, dict]:
    """The evidence table, the finding of each part, the verdict by `arbench.verdict.RULE` with
    how often it comes out over resamples, and the matrix of every pair of training runs;
    returns the section and the headline."""
    rows, decided = verdict(judged, selection, check, errors, unfinished)
    found = resampled(judged, selection, check, errors, unfinished)
    outcome = headline(found)
    parts = []
    if rows and "favours" in rows[0]:
        parts.append(
            f"Each family's representative, chosen on the draw of samples kept for the choice "
            f"(the model best by the most voting metrics there): **{rows[0]['autoregressive']}** "
            f"and **{rows[0]['mixture']}**, compared here on another, independent draw (the one "
            "the tables show); values read against the real images' own (a value better than "
            "real counts as real's):\n"
        )
        parts.append(evidence_table(rows) + "\n")
        parts.append(
            "\n".join(
                f"- **{part}**: {describe_part(part, decided['parts'][part])}." for part in PARTS
            )
            + "\n"
        )
    parts.append(f"On the draws as measured: **{decided['outcome']}** — {decided['reason']}.\n")
    parts.append(
        f"**Verdict on {dataset}: {outcome}** ({shares_text(found)} of {RESAMPLES} resamples of "
        f"the draws, the seeds and the images; a verdict needs {SHARE:.0%}).\n"
    )
    matrix = pair_matrix(judged, selection, check, errors, unfinished)
    if matrix:
        parts.append(
            "Every autoregressive training run against every mixture run, compared on the shown "
            "draw without choosing representatives (the share of resamples that gives the same "
            "outcome in brackets):\n\n" + matrix_table(matrix) + "\n"
        )
    return "\n".join(parts), {
        "outcome": outcome,
        "shares": found,
        "as_measured": decided,
        "matrix": matrix,
    }


def completion_section(files: dict[str, dict], filled: dict[str, dict]) -> str:
    """The conditional NLL of the hidden rows per model, and paired differences."""
    summaries = {m: COMPLETION.read(f["completion"]) for m, f in files.items()}
    first = next(iter(summaries.values()))
    lines = [
        f"Completion: the bottom {first['hidden_rows']:.0%} of the rows of every test image "
        f"hidden ({first['hidden_pixels']} values), the rest given. Conditional NLL of the true "
        "hidden values, nats/image:\n",
        "| model | conditional NLL | likelihood |",
        "| --- | --- | --- |",
    ]
    for model, summary in summaries.items():
        lines.append(
            f"| {model} | {summary['conditional_nll_nats']:.2f} ± "
            f"{summary['conditional_nll_nats_se']:.2f} | {summary['likelihood']} |"
        )
    lines.append("")
    estimates = {m for m, summary in summaries.items() if summary["likelihood"] != "exact"}

    nlls = {m: found["nll"] for m, found in filled.items()}
    for pair in paired_differences(nlls):
        note = " (an estimate, not exact: compare with care)" if pair["b"] in estimates else ""
        lines.append(
            f"- {pair['a'].upper()} − {pair['b'].upper()} = {pair['mean']:+.2f} ± "
            f"{pair['se']:.2f} nats/image on the same test images{note}."
        )
    return "\n".join(lines) + "\n"


def copies_sentence(meta: dict) -> str:
    """What share of the test images are exact copies of training images (from the sidecar)."""
    counts = meta.get("duplicates", {}).get("test")
    if counts is None:
        return ""
    share = counts["copies_of_train"] / meta["counts"]["test"]
    text = f"{share:.1%} of the test images are exact copies of a training image"
    dropped = meta.get("dropped_as_copies_of_train", {}).get("test")
    if dropped:
        text += f" ({dropped} such copies were dropped from the test split)"
    return text + "."


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


DEFINITIONS = f"""## How sample quality is measured

The same measurements for every set of images (`src/arbench/quality.py` defines each), all against
the same test images, every set at the same size:

- **Fréchet** and **KID**: Fréchet distance and kernel inception distance (unbiased, cubic
  kernel; may be slightly negative) between the set's features and the test images' features, in
  four feature spaces: *learned*, a small convolutional autoencoder trained on the dataset's
  training images (also to tell the labels apart where there are labels); *contrastive*, an
  encoder of the same shape trained on them self-supervised, to match two augmented views of an
  image (SimCLR: crops, mirroring where the data allow it, colour jitter); *random*, the same shape
  left at random weights; and *PCA*, the top 32 principal components of the training pixels.
  Lower is closer.
- **precision** and **density**: how much of the set lies where test images are (fidelity);
  **recall** and **coverage**: how much of where test images are the set reaches (diversity);
  k = 5 nearest neighbours in the learned features. Higher is better, up to real images' own.
- **classifier accuracy**: a small convolutional network trained to tell the set from as many
  test images, cross-validated in {C2ST["folds"]} folds, the same network and budget for every
  set: 0.5 when it cannot tell them apart, 1 when it always can. It sees fidelity and diversity
  at once, and votes in each part whose checks it passes. Lower is better.
- **novelty**: RMS pixel distance from each image to its nearest training image; **copies**: the
  share of exact training images. They describe; they do not vote.
- ± is a standard error, what another draw of the set would give against the same test images:
  from random subsets of three quarters of the set (their spread times sqrt(3), the delete-d
  jackknife) for the distances and k-NN measures, binomial for the classifier. The error-bar
  check compares each with the spread of at least 20 independent draws of a set from a trained
  network and from the real images; a metric whose error is off by more than the check's
  tolerance does not vote.
- Every model draws two independent sample sets, measured alike: the tables show the first; the
  verdict chooses each family's representative on the second and compares the two on the first.

**The metric check.** Before a metric may vote in a part of the hypothesis on a dataset it must
rank sets whose order is known for that part. Fidelity: held-out real images (valid split)
first; one Gaussian fitted to the training pixels (moment-matched), the real images blurred over
3x3 pixels (grey-level data), and real images with 5%, 15% and 30% of their pixels replaced by
noise behind them, no noise level ahead of a lower one, and for the classifier all of these with
a second classifier seed too. Diversity: real images without their largest mode (a label, or a
k-means cluster of the pixels: outside every feature space the metrics use) and real images each
replaced by the prototype of its nearest of a few k-means clusters of the training pixels behind
real images; and no set known to fool a diversity metric ahead of real images: the noisy sets,
real images with a fifth replaced by one-Gaussian draws or by noise images (outliers widen k-NN
balls), and as many prototypes as the largest mixture has components, drawn with per-pixel
noise. Every metric must also put one Gaussian more than {RESOLVING_SES:g} standard errors behind
real images at this set size. A fidelity metric may score the prototypes beyond real images
(samples piled on dense places look "more precise" than real): the verdict reads every value
against the real images' own, so that gains nothing. Features are divided by the spread of the
test images' features in their space, so every space's distances are in the same units.
"""


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))


def figure_path(dataset: str, kind: str) -> Path:
    """Where a figure goes, without its suffix: it is saved as PNG and PDF."""
    return Path(path("figure", dataset=dataset, figure=kind)).with_suffix("")


def build_report(inputs: dict) -> Path:
    """Write the tables, figures and report.md from the files `inputs` names (see the module
    docstring); returns the report's path."""
    models: dict[str, dict[str, dict]] = inputs["models"]
    report = Path(path("report"))
    rows = likelihood_rows(models)
    write_csv(Path(path("likelihoods")), TABLE_FIELDS, rows)
    quality = {
        dataset: {m: QUALITY.read(files[m]["quality"]) for m in files}
        for dataset, files in models.items()
    }
    checks = {dataset: METRIC_CHECK.read(inputs["checks"][dataset]) for dataset in models}
    errors = {dataset: ERROR_CHECK.read(inputs["errors"][dataset]) for dataset in models}
    write_csv(Path(path("sample_quality")), QUALITY_FIELDS, quality_rows(quality, checks))

    def link(text: str, figure: Path) -> str:
        return f"![{text}]({os.path.relpath(figure.with_suffix('.png'), report.parent)})\n"

    out = [
        f"# arbench report\n\nGenerated {date.today().isoformat()}. The study asks whether "
        "autoregressive models (NADE, MADE, a gated PixelCNN) give richer samples than mixture "
        "models (Gaussian "
        "mixtures: diagonal (gmm_diag), full covariance chosen on the valid split (gmm), and "
        "on whitened principal components as the original study fitted it (pca_gmm); a mixture "
        "of Bernoullis (mob)). Test NLLs below are on each dataset's test split and discrete "
        "support. NADE, MADE, PixelCNN, the mixture of Bernoullis and the diagonal Gaussian "
        "mixture are "
        "exact (the diagonal mixture's bin masses are differences of normal CDFs); the full "
        "and PCA Gaussian mixtures' are the uniform-dequantization upper bound, with noise "
        "independent of their fit's. ± is one standard error over test images.\n",
        f"**The verdict's rule**, fixed before any number below: {RULE}\n",
    ]
    for name, reason in inputs.get("skipped", {}).items():
        out.append(f"> Dataset **{name}** was left out of this run: {reason}\n")
    verdicts: dict[str, dict] = {}
    for dataset, files in models.items():
        names = list(files)
        # figures show each model's first training run; tables show every run
        shown_runs = [m for m in names if replicate_of(m)[1] == 0]
        data = load_dataset(inputs["data"][dataset])
        shape = "x".join(str(s) for s in data.shape)
        out.append(
            f"## {dataset}\n\n{data.meta['source']}, {data.meta['counts']['train']} train "
            f"/ {data.meta['counts']['test']} test images of {shape}, {data.levels} levels. "
            + copies_sentence(data.meta)
            + "\n"
        )
        out.append(markdown_table([r for r in rows if r["dataset"] == dataset]) + "\n")
        out.append(
            f"A training ended by a cap while its best valid NLL was still falling by more than "
            f"{convergence.TOLERANCE:.2%} of it an epoch is marked unfinished: its dataset's "
            "verdict is not decided.\n"
        )
        bounds = {
            r["model"] for r in rows if r["dataset"] == dataset and r["likelihood"] != "exact"
        }
        count = len(data.test)
        pairs = paired_differences(
            {m: NLLS.read(f["nll"], count=count)["nll"] for m, f in files.items()}
        )
        if pairs:
            out.append("Paired differences on the same test images:\n")
            out.extend(describe_pair(p, p["b"] in bounds) for p in pairs)
            out.append("")
        samples = {
            m: SAMPLES.read(files[m]["samples"], levels=data.levels, shape=data.shape)["samples"]
            for m in shown_runs
        }
        figure = figure_path(dataset, "samples")
        real = data.test[shown_test_images(data, GRID_IMAGES)]
        sample_panels(
            real, samples, data.levels, f"{dataset}: real test images and samples", figure
        )
        out.append(link(f"{dataset} samples", figure))
        assessed, check = quality[dataset], checks[dataset]
        first = assessed[names[0]]
        out.append(
            f"Sample quality ({first['model']['images']} images a set against "
            f"{first['test_images']} test images; definitions below):\n"
        )
        out.append(
            quality_table([quality_row(dataset, m, "model", assessed[m]["model"]) for m in names])
            + "\n"
        )
        out.append(
            "The metric check: sets whose ranking is known (the dropped mode is "
            f"{check['dropped_mode']}; the prototypes are {check['prototypes']}; the noisy "
            f"prototypes are {check['noisy_prototypes']}):\n"
        )
        sets = check["sets"]
        out.append(quality_table([quality_row(dataset, n, "check", sets[n]) for n in sets]) + "\n")
        measured = {m: assessed[m]["model"] for m in names}
        votes = voting_parts(check, errors[dataset])
        note = classifier_note(check, votes["c2st_accuracy"], measured, first["test_pixels"])
        if note:
            out.append(note)
        out.append(
            "Pixel statistics (described, not voting; in levels, or for binary images the share "
            "of ones):\n\n"
            + pixel_table(
                first["test_pixels"],
                {
                    **{m: measured[m]["pixels"] for m in names},
                    **{n: sets[n]["pixels"] for n in (REAL, GAUSSIAN)},
                },
                data.levels,
            )
            + "\n"
        )
        out.append(check_table(check, errors[dataset]) + "\n")
        out.append(
            f"The error-bar check: {errors[dataset]['images_per_set']} images a set, drawn "
            f"independently from {errors[dataset]['network'] or 'no network'} and from the real "
            "images (disjoint sets of the training and valid images, as many as they hold); the "
            "spread of each metric across the draws beside the standard error one set is given. "
            f"A metric whose pooled ratio lies outside {TOLERANCE[0]:g}-{TOLERANCE[1]:g}x does "
            "not vote.\n\n" + error_table(errors[dataset]) + "\n"
        )
        out.append(resolving_sentence(check, errors[dataset]) + "\n")
        training = {r["model"]: r["training"] for r in rows if r["dataset"] == dataset}
        unfinished = still_improving(training)
        section, verdicts[dataset] = verdict_section(
            dataset,
            {m: assessed[m]["model"] for m in names},
            {m: assessed[m]["selection"] for m in names},
            check,
            errors[dataset],
            unfinished,
        )
        out.append(section)
        figure = figure_path(dataset, "nearest")
        nearest_panels(
            neighbour_pairs(data, samples, assessed),
            data.levels,
            f"{dataset}: test images and samples beside their nearest training images",
            figure,
        )
        out.append(link(f"{dataset} nearest training images", figure))
        filled = {
            m: COMPLETIONS.read(
                f["completion_images"], levels=data.levels, shape=data.shape, count=count
            )
            for m, f in files.items()
        }
        out.append(completion_section(files, filled))
        shown = filled[shown_runs[0]]
        figure = figure_path(dataset, "completion")
        completion_panels(
            shown["originals"],
            shown["hidden"],
            {m: filled[m]["completions"] for m in shown_runs},
            data.levels,
            f"{dataset}: the bottom rows hidden, completed by each model",
            figure,
        )
        out.append(link(f"{dataset} completions", figure))
        curves = {m: Path(files[m]["curve"]) for m in shown_runs if model_entry(m).neural}
        if curves:
            figure = figure_path(dataset, "training")
            training_curves(curves, f"{dataset}: training curves", figure)
            out.append(link(f"{dataset} training curves", figure))
    out.append(DEFINITIONS)
    VERDICTS.write(path("verdicts"), verdicts)
    atomic_write(report, lambda h: h.write("\n".join(out).encode()))
    log.info("wrote %s", report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.report", "Assemble the report from the stages' outputs.")
    parser.add_argument(
        "--inputs",
        required=True,
        type=json_object,
        help='JSON (inline or a file): {"data": {dataset: file}, "models": {dataset: {model: '
        '{kind: file}}}, "skipped": {dataset: reason}}, as arbench.plan.report_inputs makes it',
    )
    args = parser.parse_args(argv)
    return run_stage("report", lambda: build_report(args.inputs))


if __name__ == "__main__":
    sys.exit(main())
