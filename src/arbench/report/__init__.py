"""The report stage: likelihood table, figures and `report.md` from the other stages' outputs.

`python -m arbench.report --inputs '{"data": {...}, "models": {...}, "skipped": {...}}'` reads
the files its rule lists (`arbench.core.plan.report_inputs`): per dataset its data file, metric
check and error-bar check, and per model its evaluate outputs (summary and per-image NLLs),
samples, training curve, sample-quality measurements and completions. It writes the likelihood and
sample-quality tables, the verdicts, the figures and `report.md` where `arbench.core.plan.LAYOUT`
puts them. `build_report` is the report's outline; its parts are `tables`, `prose` and `figures`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from arbench.core.cli import json_object, run_stage, stage_parser
from arbench.core.contracts import (
    COMPLETIONS,
    ERROR_CHECK,
    METRIC_CHECK,
    NLLS,
    QUALITY,
    SAMPLES,
    VERDICTS,
)
from arbench.core.files import atomic_write
from arbench.core.plan import PRIMARY_PAIR, model_entry, path, replicate_of
from arbench.data.format import load_dataset
from arbench.data.splits import shown_test_images
from arbench.metrics.verdict import RULE, answer, declared, still_improving
from arbench.report.figures import (
    GRID_IMAGES,
    completion_panels,
    figure_path,
    nearest_panels,
    neighbour_pairs,
    sample_panels,
    training_curves,
)
from arbench.report.prose import (
    DEFINITIONS,
    completion_section,
    copies_sentence,
    describe_pair,
    verdict_section,
)
from arbench.report.tables import (
    QUALITY_FIELDS,
    SHOWN,
    TABLE_FIELDS,
    calibration_table,
    check_table,
    likelihood_rows,
    markdown_table,
    paired_differences,
    pixel_table,
    quality_rows,
    quality_table,
    write_csv,
)
from arbench.training import convergence

log = logging.getLogger("arbench.report")

INTRODUCTION = (
    "The study asks whether autoregressive models (NADE, MADE, a gated PixelCNN) give richer "
    "samples than mixture models (Gaussian mixtures: diagonal (gmm_diag), full covariance chosen "
    "on the valid split (gmm), and on whitened principal components as the original study fitted "
    "it (pca_gmm); a mixture of Bernoullis (mob)). Test NLLs below are on each dataset's test "
    "split and discrete support. NADE, MADE, PixelCNN, the mixture of Bernoullis and the "
    "diagonal Gaussian mixture are exact (the diagonal mixture's bin masses are differences of "
    "normal CDFs); the full and PCA Gaussian mixtures' are the uniform-dequantization upper "
    "bound, with noise independent of their fit's. ± is one standard error over test images."
)


@dataclass
class Measured:
    """Everything the report reads, read once: the likelihood rows of every training run, and
    per dataset its models' files, sample-quality measurements, metric check and error-bar
    check."""

    inputs: dict
    rows: list[dict]
    quality: dict[str, dict[str, dict]]
    checks: dict[str, dict]
    errors: dict[str, dict]

    @classmethod
    def read(cls, inputs: dict) -> Measured:
        models = inputs["models"]
        return cls(
            inputs,
            likelihood_rows(models),
            {d: {m: QUALITY.read(f[m]["quality"]) for m in f} for d, f in models.items()},
            {d: METRIC_CHECK.read(inputs["checks"][d]) for d in models},
            {d: ERROR_CHECK.read(inputs["errors"][d]) for d in models},
        )


def build_report(inputs: dict) -> Path:
    """Write the tables, figures and report.md from the files `inputs` names (see the module
    docstring); returns the report's path. The outline: the two CSV tables; the introduction and
    the verdict's rule; per dataset its section; how sample quality is measured; the verdicts."""
    measured = Measured.read(inputs)
    write_csv(Path(path("likelihoods")), TABLE_FIELDS, measured.rows)
    write_csv(
        Path(path("sample_quality")),
        QUALITY_FIELDS,
        quality_rows(measured.quality, measured.checks),
    )
    report = Path(path("report"))
    out = [
        f"# arbench report\n\nGenerated {date.today().isoformat()}. {INTRODUCTION}\n",
        "**The verdict's rule**, fixed before any number below:\n\n"
        + "\n".join(f"{i}. {line}" for i, line in enumerate(RULE, 1))
        + "\n",
    ]
    for name, reason in inputs.get("skipped", {}).items():
        out.append(f"> Dataset **{name}** was left out of this run: {reason}\n")
    verdicts: dict[str, dict] = {}
    for dataset in inputs["models"]:
        section, verdicts[dataset] = dataset_section(measured, dataset, report.parent)
        out.extend(section)
    out.append(DEFINITIONS)
    VERDICTS.write(path("verdicts"), verdicts)
    atomic_write(report, lambda h: h.write("\n".join(out).encode()))
    log.info("wrote %s", report)
    return report


def dataset_section(measured: Measured, dataset: str, folder: Path) -> tuple[list[str], dict]:
    """One dataset's part of the report, and its verdict. The outline: what the data are; the
    likelihoods with paired differences; samples beside real images; sample quality; the metric
    check, the pixel statistics, each metric's checks and the error-bar check; the verdict; each
    sample beside its nearest training image; completions; training curves."""
    files = measured.inputs["models"][dataset]
    data = load_dataset(measured.inputs["data"][dataset])
    # figures show each model's first training run; tables show every run
    shown_runs = [m for m in files if replicate_of(m)[1] == 0]
    samples = {
        m: SAMPLES.read(files[m]["samples"], levels=data.levels, shape=data.shape)["samples"]
        for m in shown_runs
    }
    out = [data_paragraph(dataset, data)]
    out += likelihood_part(measured, dataset, data)
    figure = figure_path(dataset, "samples")
    real = data.test[shown_test_images(data, GRID_IMAGES)]
    sample_panels(real, samples, data.levels, f"{dataset}: real test images and samples", figure)
    out.append(link(f"{dataset} samples", figure, folder))
    training = {r["model"]: r["training"] for r in measured.rows if r["dataset"] == dataset}
    assessed = measured.quality[dataset]
    found = answer(
        assessed,
        measured.checks[dataset],
        measured.errors[dataset],
        still_improving(training),
        measured.inputs.get("primary", PRIMARY_PAIR),
    )
    out += quality_part(measured, dataset, data, found)
    out.append(verdict_section(dataset, found))
    figure = figure_path(dataset, "nearest")
    nearest_panels(
        neighbour_pairs(data, samples, assessed),
        data.levels,
        f"{dataset}: test images and samples beside their nearest training images",
        figure,
    )
    out.append(link(f"{dataset} nearest training images", figure, folder))
    out += completion_part(files, data, shown_runs, dataset, folder)
    curves = {m: Path(files[m]["curve"]) for m in shown_runs if model_entry(m).neural}
    if curves:
        figure = figure_path(dataset, "training")
        training_curves(curves, f"{dataset}: training curves", figure)
        out.append(link(f"{dataset} training curves", figure, folder))
    return out, found


def link(text: str, figure: Path, folder: Path) -> str:
    return f"![{text}]({os.path.relpath(figure.with_suffix('.png'), folder)})\n"


def data_paragraph(dataset: str, data) -> str:
    shape = "x".join(str(s) for s in data.shape)
    return (
        f"## {dataset}\n\n{data.meta['source']}, {data.meta['counts']['train']} train "
        f"/ {data.meta['counts']['test']} test images of {shape}, {data.levels} levels. "
        + copies_sentence(data.meta)
        + "\n"
    )


def likelihood_part(measured: Measured, dataset: str, data) -> list[str]:
    """The likelihood table, what marks a training unfinished, and the paired differences."""
    rows = [r for r in measured.rows if r["dataset"] == dataset]
    out = [
        markdown_table(rows) + "\n",
        f"A training whose best valid NLL was still falling by more than "
        f"{convergence.TOLERANCE:.2%} of it an epoch when it ended, whatever ended it, is marked "
        "unfinished: its dataset's verdict is not decided.\n",
    ]
    bounds = {r["model"] for r in rows if r["likelihood"] != "exact"}
    files = measured.inputs["models"][dataset]
    nlls = {m: NLLS.read(f["nll"], count=len(data.test))["nll"] for m, f in files.items()}
    pairs = paired_differences(nlls)
    if pairs:
        out.append("Paired differences on the same test images:\n")
        out.extend(describe_pair(p, p["b"] in bounds) for p in pairs)
        out.append("")
    return out


def quality_part(measured: Measured, dataset: str, data, found: dict) -> list[str]:
    """Sample quality of every model, the metric check's sets and judgement, the pixel
    statistics and the error-bar check's calibration."""
    assessed, check, errors = (
        measured.quality[dataset],
        measured.checks[dataset],
        measured.errors[dataset],
    )
    first = next(iter(assessed.values()))
    values = found["models"]
    metrics = [m for m in SHOWN if m in next(iter(values.values()))]
    sets = check["sets"]
    plan = declared(check, errors)
    pixels = {m: assessed[m]["model"]["pixels"] for m in assessed if replicate_of(m)[1] == 0}
    return [
        f"Sample quality ({first['images_per_set']} images a draw against "
        f"{first['test_images']} test images; each model's mean over its runs and draws):\n",
        quality_table(values, metrics) + "\n",
        "The metric check: sets whose ranking is known (the dropped mode is "
        f"{check['dropped_mode']}; the prototypes are {check['prototypes']}):\n",
        quality_table({n: plan_set(sets[n], metrics) for n in sets}, metrics) + "\n",
        check_table(plan) + "\n",
        "Pixel statistics (described; in levels, or for binary images the share of ones):\n\n"
        + pixel_table(first["test_pixels"], pixels, data.levels)
        + "\n",
        f"The error-bar check: {errors['images_per_set']} images a set, drawn independently "
        f"from {', '.join(errors['draws'])}; the spread of each metric across the draws over the "
        "error one set is given:\n\n" + calibration_table(errors) + "\n",
    ]


def plan_set(found: dict, metrics: list[str]) -> dict:
    return {m: found[m] for m in metrics if m in found}


def completion_part(files: dict, data, shown_runs: list[str], dataset: str, folder: Path) -> list:
    """The conditional NLL of the hidden rows per model, and the completions figure."""
    filled = {
        m: COMPLETIONS.read(
            f["completion_images"], levels=data.levels, shape=data.shape, count=len(data.test)
        )
        for m, f in files.items()
    }
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
    return [completion_section(files, filled), link(f"{dataset} completions", figure, folder)]


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.report", "Assemble the report from the stages' outputs.")
    parser.add_argument(
        "--inputs",
        required=True,
        type=json_object,
        help='JSON (inline or a file): {"data": {dataset: file}, "models": {dataset: {model: '
        '{kind: file}}}, "skipped": {dataset: reason}}, as arbench.core.plan.report_inputs '
        "makes it",
    )
    args = parser.parse_args(argv)
    return run_stage(
        "report",
        lambda: build_report(args.inputs),
        inputs=files_read(args.inputs),
        outputs=[path(kind) for kind in ("report", "likelihoods", "sample_quality", "verdicts")],
    )


def files_read(inputs: dict) -> list[str]:
    """Every file the report reads, from its manifest."""
    files = [*inputs["data"].values(), *inputs["checks"].values(), *inputs["errors"].values()]
    for models in inputs["models"].values():
        files += [file for kinds in models.values() for file in kinds.values()]
    return files
