"""The report stage: likelihood table, figures and `report.md` from the other stages' outputs.

`python -m arbench.report --inputs '{"data": {...}, "models": {...}, "skipped": {...}}'` reads
the files its rule lists (`arbench.plan.report_inputs`): per dataset its data file, and per model
its evaluate outputs (summary and per-image NLLs), samples, training curve and sample-quality
measurements. It writes the likelihood and sample-quality tables, the figures and `report.md`
where `arbench.plan.LAYOUT` puts them, with per dataset the verdict on the hypothesis drawn from
those numbers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import sys
from datetime import date
from pathlib import Path

import numpy as np

from arbench.cli import json_object, run_stage
from arbench.data.format import load_dataset
from arbench.data.splits import stratified_sample
from arbench.files import atomic_write
from arbench.plan import MODELS, path
from arbench.plots import nearest_panels, sample_panels, training_curves
from arbench.quality import flat, nearest

log = logging.getLogger("arbench.report")

TABLE_FIELDS = [
    "dataset",
    "model",
    "nll_nats",
    "nll_nats_se",
    "bits_per_dim",
    "bits_per_dim_se",
    "likelihood",
    "test_images",
    "parameters",
    "train_seconds",
    "device",
]
QUALITY_FIELDS = [
    "dataset",
    "model",
    "frechet_distance",
    "frechet_distance_se",
    "kernel_distance",
    "kernel_distance_se",
    "diversity",
    "diversity_se",
    "novelty",
    "novelty_se",
    "copied_fraction",
    "images",
]
AUTOREGRESSIVE = tuple(name for name, entry in MODELS.items() if entry.family == "autoregressive")
MIXTURES = tuple(name for name, entry in MODELS.items() if entry.family == "mixture")
NEIGHBOUR_PANEL_SAMPLES = 8
GRID_IMAGES = 36
FIGURE_SEED = 0


def likelihood_rows(models: dict[str, dict[str, dict]]) -> list[dict]:
    rows = []
    for files in models.values():
        for inputs in files.values():
            metrics = json.loads(Path(inputs["metrics"]).read_text())
            rows.append(
                {
                    **{k: metrics.get(k) for k in TABLE_FIELDS},
                    "likelihood": "exact" if metrics["exact"] else "upper bound",
                }
            )
    return rows


def paired_differences(files: dict[str, dict]) -> list[dict]:
    """NLL(a) - NLL(b) over the same test images, for each autoregressive vs mixture pair."""
    models = list(files)

    def nll(model):
        return np.load(files[model]["nll"])["nll"]

    pairs = []
    for a in (m for m in models if m in AUTOREGRESSIVE):
        for b in (m for m in models if m in MIXTURES):
            difference = nll(a) - nll(b)
            se = difference.std(ddof=1) / math.sqrt(len(difference))
            mean = float(difference.mean())
            pairs.append(
                {"a": a, "b": b, "mean": mean, "low": mean - 1.96 * se, "high": mean + 1.96 * se}
            )
    return pairs


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| model | NLL (nats/image) | bits/dim | likelihood | parameters | train time | device |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        seconds = f"{r['train_seconds']:.0f} s" if r["train_seconds"] is not None else ""
        lines.append(
            f"| {r['model']} | {r['nll_nats']:.2f} ± {r['nll_nats_se']:.2f} "
            f"| {r['bits_per_dim']:.4f} ± {r['bits_per_dim_se']:.4f} | {r['likelihood']} "
            f"| {r['parameters'] or '':,} | {seconds} | {r['device'] or ''} |"
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


def quality_row(dataset: str, model: str, measured: dict) -> dict:
    row = {"dataset": dataset, "model": model}
    for key in ("frechet_distance", "kernel_distance", "diversity", "novelty"):
        row[key], row[f"{key}_se"] = measured[key]["value"], measured[key]["se"]
    row["copied_fraction"], row["images"] = measured["copied_fraction"], measured["images"]
    return row


def load_quality(models: dict[str, dict[str, dict]]) -> dict[tuple[str, str], dict]:
    """The quality stage's output for every (dataset, model) of the plan."""
    return {
        (dataset, model): json.loads(Path(inputs["quality"]).read_text())
        for dataset, files in models.items()
        for model, inputs in files.items()
    }


def quality_rows(quality: dict[tuple[str, str], dict], datasets: dict[str, list[str]]) -> list:
    """One row per model, and a `real` row (held-out valid images) per dataset."""
    rows = []
    for dataset, models in datasets.items():
        for model in models:
            rows.append(quality_row(dataset, model, quality[dataset, model]["model"]))
        rows.append(quality_row(dataset, "real", quality[dataset, models[0]]["real"]))
    return rows


def quality_table(rows: list[dict]) -> str:
    lines = [
        "| samples | Fréchet distance | kernel distance | diversity | novelty | copies |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['frechet_distance']:.3f} ± {r['frechet_distance_se']:.3f} "
            f"| {r['kernel_distance']:.4f} ± {r['kernel_distance_se']:.4f} "
            f"| {r['diversity']:.3f} ± {r['diversity_se']:.3f} "
            f"| {r['novelty']:.4f} ± {r['novelty_se']:.4f} | {r['copied_fraction']:.0%} |"
        )
    return "\n".join(lines)


def difference(a: dict, b: dict, key: str) -> tuple[float, float]:
    """b - a for one measurement, with the SE of two independent estimates."""
    return b[key] - a[key], math.hypot(a[f"{key}_se"], b[f"{key}_se"])


def verdict(dataset: str, rows: list[dict], test_diversity: float) -> str:
    """The hypothesis on one dataset, from the Fréchet and kernel distances: does the best
    autoregressive model's sample distribution sit closer to the test images than the best
    mixture's (each by its lowest Fréchet distance), beyond two standard errors? Supported when
    at least one distance says so and neither says the opposite. Diversity and novelty qualify
    the answer."""
    by_model = {r["model"]: r for r in rows}
    ours = [by_model[m] for m in AUTOREGRESSIVE if m in by_model]
    theirs = [by_model[m] for m in MIXTURES if m in by_model]
    if not ours or not theirs:
        return (
            f"**Verdict on {dataset}: not tested** — it needs an autoregressive model and a "
            "mixture model."
        )
    best_ours = min(ours, key=lambda r: r["frechet_distance"])
    best_theirs = min(theirs, key=lambda r: r["frechet_distance"])
    a, b = best_ours["model"].upper(), best_theirs["model"].upper()
    names = {"frechet_distance": "Fréchet distance", "kernel_distance": "kernel distance"}
    findings, closer = [], set()
    for key, name in names.items():
        gap, se = difference(best_theirs, best_ours, key)  # ours - theirs
        winner = a if gap < -2 * se else b if gap > 2 * se else None
        closer.add(winner)
        digits = 3 if key == "frechet_distance" else 4
        finding = (
            f"{name} {best_ours[key]:.{digits}f} for {a} against {best_theirs[key]:.{digits}f} "
            f"for {b} ({a} − {b} = {gap:+.{digits}f} ± {se:.{digits}f}: "
        )
        finding += f"{winner} closer)" if winner else "within two standard errors)"
        findings.append(finding)
    if a in closer and b not in closer:
        outcome, because = "supported", f"{a}'s samples are closer to the test images than {b}'s"
    elif b in closer and a not in closer:
        outcome, because = "contradicted", f"{b}'s samples are closer to the test images than {a}'s"
    elif a in closer:
        outcome, because = "not resolved", "the two distances point in opposite directions"
    else:
        outcome, because = (
            "not resolved",
            "neither distance separates them beyond two standard errors",
        )
    evidence = "; ".join(findings)
    qualifiers = [
        f"diversity {best_ours['diversity']:.3f} ({a}) and {best_theirs['diversity']:.3f} "
        f"({b}) against {test_diversity:.3f} among test images",
        f"novelty {best_ours['novelty']:.4f} ({a}) and {best_theirs['novelty']:.4f} ({b})",
    ]
    copying = [r["model"].upper() for r in (best_ours, best_theirs) if r["copied_fraction"] > 0.5]
    if copying:
        qualifiers.append(f"most samples of {' and '.join(copying)} copy training images")
    return (
        f"**Verdict on {dataset}: {outcome}** — {because}: {evidence}. For context: "
        + "; ".join(qualifiers)
        + "."
    )


def shown_test_images(data, count: int) -> np.ndarray:
    """Indices of the test images a figure shows: a random draw with every label (digit, game)
    as equally represented as it allows, the same for every model and every figure."""
    labels = data.labels["test"] if data.labels else None
    return stratified_sample(len(data.test), count, labels, seed=FIGURE_SEED)


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


DEFINITIONS = """## How sample quality is measured

The same definitions for every model (`src/arbench/quality.py`); ± is a bootstrap standard error
(samples and test images resampled), or for novelty the standard error over samples.

- **Fréchet distance**: between Gaussians fitted to the features of the samples and of the test
  images, |mu_s - mu_t|^2 + tr(S_s + S_t - 2 (S_s S_t)^1/2) (the FID formula). Features are the
  top 32 principal components of the dataset's training images, pixels scaled to [0, 1]: a
  fixed projection shared by every model. Lower is closer; identical sets give 0.
- **Kernel distance**: squared maximum mean discrepancy between the same features, Gaussian
  kernel with the median distance among test images as bandwidth (biased estimate: identical
  sets give 0). Lower is closer.
- **Diversity**: mean distance between two different samples in the same features; 0 when
  every sample is the same image. Compare with the test images' own diversity.
- **Novelty**: root-mean-square pixel distance (pixels in [0, 1]) from each sample to its
  nearest training image; 0 for a copy. *copies* is the fraction of samples that are exact
  training images.
- The **real** row measures as many held-out valid images the same way: the distances a
  perfect model would reach with this many samples.

A verdict compares the best autoregressive model with the best mixture (each by its lowest
Fréchet distance). It says *supported* when at least one of the two distances puts the
autoregressive model's samples closer to the test images by more than two standard errors and
neither puts them farther; *contradicted* in the mirror case; *not resolved* otherwise.
"""


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)
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
    datasets = {dataset: list(files) for dataset, files in models.items()}
    report = Path(path("report"))
    rows = likelihood_rows(models)
    write_csv(Path(path("likelihoods")), TABLE_FIELDS, rows)
    quality = load_quality(models)
    measured = quality_rows(quality, datasets)
    write_csv(Path(path("sample_quality")), QUALITY_FIELDS, measured)

    def link(text: str, figure: Path) -> str:
        return f"![{text}]({os.path.relpath(figure.with_suffix('.png'), report.parent)})\n"

    out = [
        f"# arbench report\n\nGenerated {date.today().isoformat()}. The study asks whether "
        "autoregressive models (NADE, MADE) give richer samples than mixture models (GMM, "
        "mixture of Bernoullis). Test NLLs below are on each dataset's test split and "
        "discrete support; NADE, MADE and the mixture of Bernoullis are exact, the GMM's is "
        "the uniform-dequantization upper bound. ± is one standard error over test images.\n"
    ]
    for name, reason in inputs.get("skipped", {}).items():
        out.append(f"> Dataset **{name}** was left out of this run: {reason}\n")
    for dataset, files in models.items():
        names = list(files)
        data = load_dataset(inputs["data"][dataset])
        shape = "x".join(str(s) for s in data.shape)
        out.append(
            f"## {dataset}\n\n{data.meta['source']}, {data.meta['counts']['train']} train "
            f"/ {data.meta['counts']['test']} test images of {shape}, {data.levels} levels. "
            + copies_sentence(data.meta)
            + "\n"
        )
        out.append(markdown_table([r for r in rows if r["dataset"] == dataset]) + "\n")
        bounds = {
            r["model"] for r in rows if r["dataset"] == dataset and r["likelihood"] != "exact"
        }
        pairs = paired_differences(files)
        if pairs:
            out.append("Paired differences on the same test images:\n")
            out.extend(describe_pair(p, p["b"] in bounds) for p in pairs)
            out.append("")
        samples = {m: np.load(files[m]["samples"])["samples"] for m in names}
        figure = figure_path(dataset, "samples")
        real = data.test[shown_test_images(data, GRID_IMAGES)]
        sample_panels(
            real, samples, data.levels, f"{dataset}: real test images and samples", figure
        )
        out.append(link(f"{dataset} samples", figure))
        assessed = {m: quality[dataset, m] for m in names}
        first = assessed[names[0]]
        dataset_quality = [r for r in measured if r["dataset"] == dataset]
        out.append(
            f"Sample quality ({first['model']['images']} samples per model against "
            f"{first['test_images']} test images; definitions below):\n"
        )
        out.append(quality_table(dataset_quality) + "\n")
        out.append(verdict(dataset, dataset_quality, first["test_diversity"]) + "\n")
        figure = figure_path(dataset, "nearest")
        nearest_panels(
            neighbour_pairs(data, samples, assessed),
            data.levels,
            f"{dataset}: test images and samples beside their nearest training images",
            figure,
        )
        out.append(link(f"{dataset} nearest training images", figure))
        curves = {m: Path(files[m]["curve"]) for m in names if MODELS[m].neural}
        if curves:
            figure = figure_path(dataset, "training")
            training_curves(curves, f"{dataset}: training curves", figure)
            out.append(link(f"{dataset} training curves", figure))
    out.append(DEFINITIONS)
    atomic_write(report, lambda h: h.write("\n".join(out).encode()))
    log.info("wrote %s", report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Assemble the report from the stages' outputs.")
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
