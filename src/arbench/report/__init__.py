"""The report stage: the tables, the figures, `report.md` and its self-contained HTML twin, from
the other stages' outputs.

`python -m arbench.report --inputs '{"data": {...}, "models": {...}, "skipped": {...}}'` reads
the files its rule lists (`arbench.core.plan.report_inputs`): per dataset its data file, metric
check and error-bar check, and per training run its likelihood summary, per-image NLLs, samples,
training curve, sample-quality measurements and completions. It writes the likelihood and
sample-quality tables, the verdicts, the figures, `report.md` and `report.html` where
`arbench.core.plan.LAYOUT` puts them. `build_report` is the report's outline: the answer on the
first screen, the rule, how sample quality is measured (before any table uses it), a section per
dataset (likelihoods, samples, sample quality, the verdict, completion, training). Its parts are
`tables`, `prose`, `figures` and `page` (the HTML).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from arbench.core.cli import json_object, run_stage, stage_parser
from arbench.core.contracts import (
    COMPLETION,
    COMPLETIONS,
    ERROR_CHECK,
    FEATURES_SUMMARY,
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
from arbench.metrics.measures import nearest
from arbench.metrics.spaces import flat
from arbench.metrics.verdict import answer, declared, still_improving
from arbench.report.figures import (
    calibration_plot,
    check_grid,
    completion_panels,
    figure_path,
    likelihood_plot,
    pair_matrices,
    pair_matrix,
    sample_sheet,
    training_curves,
)
from arbench.report.page import render
from arbench.report.prose import (
    DEFINITIONS,
    LIKELIHOOD_NOTE,
    copies_sentence,
    family_sentence,
    first_screen,
    pair_sentence,
    rule_section,
    undetectable_equality,
)
from arbench.report.tables import (
    QUALITY_FIELDS,
    SHOWN,
    TABLE_FIELDS,
    calibration_table,
    comparison_rows,
    declared_table,
    difference_matrix,
    draws_sentence,
    likelihood_rows,
    likelihood_table,
    matrix_table,
    model_likelihoods,
    quality_rows,
    quality_table,
    write_csv,
)

log = logging.getLogger("arbench.report")

SHEET_IMAGES = 64  # samples on each model's sheet


@dataclass
class Measured:
    """Everything the report reads, read once: the likelihood rows of every training run, and
    per dataset its runs' sample-quality measurements, metric check and error-bar check."""

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

    def verdict(self, dataset: str) -> dict:
        training = {r["model"]: r["training"] for r in self.rows if r["dataset"] == dataset}
        return answer(
            self.quality[dataset],
            self.checks[dataset],
            self.errors[dataset],
            still_improving(training),
            tuple(self.inputs.get("primary", PRIMARY_PAIR)),
        )


def build_report(inputs: dict) -> Path:
    """Write the tables, figures, report.md and report.html from the files `inputs` names (see
    the module docstring); returns the report's path."""
    measured = Measured.read(inputs)
    write_csv(Path(path("likelihoods")), TABLE_FIELDS, measured.rows)
    write_csv(
        Path(path("sample_quality")),
        QUALITY_FIELDS,
        quality_rows(measured.quality, measured.checks),
    )
    report = Path(path("report"))
    verdicts = {dataset: measured.verdict(dataset) for dataset in inputs["models"]}
    VERDICTS.write(path("verdicts"), {d: without_values(v) for d, v in verdicts.items()})
    overview = Path(path("overview")).with_suffix("")
    pair_matrices(verdicts, overview)
    best = {d: best_likelihoods(measured, d) for d in verdicts}
    links = [
        "[the rule](#the-rule)",
        "[how sample quality is measured](#how-sample-quality-is-measured)",
        "[declared before the comparisons](#declared-before-the-comparisons)",
        *(f"[{d}](#{d})" for d in verdicts),
    ]
    out = [
        f"# arbench report\n\nGenerated {date.today().isoformat()}.\n",
        first_screen(verdicts, best, links),
        link("every pair of the two families, per dataset", overview, report.parent),
    ]
    for name, reason in inputs.get("skipped", {}).items():
        out.append(f"> Dataset **{name}** was left out of this run: {reason}\n")
    out += [
        rule_section(),
        DEFINITIONS,
        "## Declared before the comparisons\n",
        "Each part's primary metric and margin, chosen by the metric check alone (the dataset's "
        "sets of known quality, with calibrated errors):\n",
        declared_table(verdicts) + "\n",
        "The error calibration: each metric's ratio of the spread of independent draws to the "
        f"error one set is given, with its 95% interval (draws: {draws_sentence(measured.errors)};"
        " drawn for this calibration only, apart from each compared run's own draws). A ratio "
        "above 1 means the error was too small: it is scaled up by the interval's upper limit (x)."
        " At 1 or below the error is kept:\n",
        calibration_table(measured.errors) + "\n",
        LIKELIHOOD_NOTE + "\n",
    ]
    for dataset, found in verdicts.items():
        out += dataset_section(measured, dataset, found, report.parent)
    text = "\n".join(out)
    atomic_write(report, lambda h: h.write(text.encode()))
    html = render(text, report.parent, "arbench report")
    atomic_write(Path(path("report_html")), lambda h: h.write(html.encode()))
    log.info("wrote %s", report)
    return report


def without_values(found: dict) -> dict:
    """A verdict as verdicts.json keeps it: every model's values without the test images'
    subsets they were measured against (quality/*.json hold those)."""
    models = {
        model: {
            m: {k: v for k, v in value.items() if k != "reference"} for m, value in found.items()
        }
        for model, found in found["models"].items()
    }
    return {**found, "models": models}


def best_likelihoods(measured: Measured, dataset: str) -> str:
    rows = [r for r in measured.rows if r["dataset"] == dataset]
    models = model_likelihoods(rows)
    best = []
    for family in ("autoregressive", "mixture"):
        mine = {m: f for m, f in models.items() if f["family"] == family}
        if mine:
            model = min(mine, key=lambda m: mine[m]["mean"])
            bound = " (bound)" if mine[model]["bound"] else ""
            best.append(f"{model} {mine[model]['mean']:,.1f}{bound}")
    return " / ".join(best)


def dataset_section(measured: Measured, dataset: str, found: dict, folder: Path) -> list[str]:
    """One dataset's part of the report: what the data are; likelihoods; samples beside their
    nearest training images; sample quality and the metric check; the verdict; completion;
    training curves."""
    files = measured.inputs["models"][dataset]
    data = load_dataset(measured.inputs["data"][dataset])
    shape = "x".join(str(s) for s in data.shape)
    out = [
        f"## {dataset}\n\n{data.meta['source']}: {data.meta['counts']['train']:,} training, "
        f"{data.meta['counts']['valid']:,} valid and {data.meta['counts']['test']:,} test images "
        f"of {shape}, {data.levels} levels. " + copies_sentence(data.meta) + "\n",
    ]
    out += likelihood_part(measured, dataset, data, folder)
    out += samples_part(measured, dataset, data, folder)
    out += quality_part(measured, dataset, found, folder)
    out += verdict_part(dataset, found, folder)
    out += completion_part(files, data, dataset, folder)
    shown_runs = [m for m in files if replicate_of(m)[1] == 0]
    curves = {m: Path(files[m]["curve"]) for m in shown_runs if model_entry(m).neural}
    if curves:
        figure = figure_path(dataset, "training")
        training_curves(curves, f"{dataset}: training curves (first seed)", figure)
        out.append(link(f"{dataset} training curves", figure, folder))
    return out


def link(text: str, figure: Path, folder: Path) -> str:
    return f"![{text}]({os.path.relpath(figure.with_suffix('.png'), folder)})\n"


def per_model_nlls(files: dict, kind: str, key: str, count: int, **read) -> dict:
    """Per model, the per-image values of `key` in each run's `kind` file, averaged over its
    runs."""
    reader = NLLS if kind == "nll" else COMPLETIONS
    runs: dict[str, list] = {}
    for run, found in files.items():
        values = reader.read(found[kind], count=count, **read)[key]
        runs.setdefault(replicate_of(run)[0], []).append(values)
    return {model: np.mean(values, axis=0) for model, values in runs.items()}


def likelihood_part(measured: Measured, dataset: str, data, folder: Path) -> list[str]:
    """The likelihood figure, each model's NLL over its runs, and the paired differences."""
    rows = [r for r in measured.rows if r["dataset"] == dataset]
    models = model_likelihoods(rows)
    figure = figure_path(dataset, "likelihoods")
    likelihood_plot(models, f"{dataset}: test NLL", figure)
    files = measured.inputs["models"][dataset]
    nlls = per_model_nlls(files, "nll", "nll", len(data.test))
    bounds = {m for m, f in models.items() if f["bound"]}
    return [
        "### Likelihoods\n",
        link(f"{dataset} test likelihoods", figure, folder),
        likelihood_table(models) + "\n",
        "Paired differences per test image, nats (negative: the row's model is better):\n",
        difference_matrix(nlls, bounds) + "\n",
    ]


def samples_part(measured: Measured, dataset: str, data, folder: Path) -> list[str]:
    """Real test images, then each model's samples (its first run), each above its nearest
    training image."""
    files = measured.inputs["models"][dataset]
    real = data.test[shown_test_images(data, SHEET_IMAGES)]
    _, index = nearest(flat(real, data.levels), flat(data.train, data.levels))
    sheets = {"real": (real, data.train[index])}
    for run in (m for m in files if replicate_of(m)[1] == 0):
        samples = SAMPLES.read(files[run]["samples"], levels=data.levels, shape=data.shape)
        # the first draw's images, whose nearest training images the quality stage found
        nearest_index = measured.quality[dataset][run]["model"]["nearest_train_index"]
        count = min(SHEET_IMAGES, len(nearest_index))
        sheets[run] = (samples["samples"][:count], data.train[nearest_index[:count]])
    lines = [
        "### Samples\n",
        "Each image above its nearest training image (an identical pair is a copy):\n",
    ]
    shown = []
    for name, (images, neighbours) in sheets.items():
        figure = figure_path(dataset, f"samples_{name}")
        title = "real test images" if name == "real" else f"{name} samples"
        sample_sheet(images, neighbours, data.levels, f"{dataset}: {title}", figure)
        shown.append(link(f"{dataset} {title}", figure, folder).strip())
    # one line for every sheet: they tile across the page and keep the report short
    return [*lines, " ".join(shown) + "\n"]


def quality_part(measured: Measured, dataset: str, found: dict, folder: Path) -> list[str]:
    """Every model's sample quality (over its runs and draws) beside real images', the metric
    check and the error calibration as figures."""
    check, errors = measured.checks[dataset], measured.errors[dataset]
    first = next(iter(measured.quality[dataset].values()))
    plan = declared(check, errors)
    values = found["models"]
    metrics = [m for m in SHOWN if m in next(iter(values.values()))]
    real = {"real (valid)": {m: plan["real"][m] for m in metrics if m in plan["real"]}}
    check_figure = figure_path(dataset, "check")
    check_grid(plan["judged"], plan["parts"], f"{dataset}: the metric check", check_figure)
    calibration = figure_path(dataset, "calibration")
    calibration_plot(errors, f"{dataset}: the error calibration", calibration)
    draws = len(first["model"]["draws"])
    return [
        "### Sample quality\n",
        f"Each model over its runs and {draws} draws of {first['images_per_set']:,} samples, "
        f"against {first['test_images']:,} test images:\n",
        quality_table({**real, **values}, metrics) + "\n",
        f"The metric check's dropped mode: {check['dropped_mode']}. "
        + accuracy_sentence(measured, dataset)
        + "\n",
        link(f"{dataset} metric check", check_figure, folder).strip()
        + "\n"
        + link(f"{dataset} error calibration", calibration, folder),
    ]


def accuracy_sentence(measured: Measured, dataset: str) -> str:
    """The label classifier's accuracy on labelled test images, where the dataset has one."""
    features = measured.inputs.get("features", {}).get(dataset)
    summary = FEATURES_SUMMARY.read(features).get("label_classifier") if features else None
    if not summary:
        return ""
    if summary["test_accuracy"] is None:
        return f"The class histogram's classifier was trained on {summary['trained_on']}."
    return (
        f"The class histogram's classifier, trained on {summary['trained_on']}, is right on "
        f"{summary['test_accuracy']:.1%} of {summary['accuracy_measured_on']}."
    )


def verdict_part(dataset: str, found: dict, folder: Path) -> list[str]:
    """The original study's pair, part by part; every pair of the two families as a figure and
    a table."""
    out = ["### Verdict\n", pair_sentence(found) + "\n"]
    if found["primary_pair"]:
        out.append(comparison_rows(found["primary_pair"]["parts"]) + "\n")
        blind = undetectable_equality(found["primary_pair"]["parts"])
        if blind:
            out.append(blind + "\n")
    out.append(family_sentence(found) + "\n")
    if found["matrix"]:
        figure = figure_path(dataset, "pairs")
        pair = found["primary_pair"]["pair"] if found["primary_pair"] else None
        pair_matrix(found["matrix"], pair, f"{dataset}: {found['family']['outcome']}", figure)
        out += [link(f"{dataset} pairs", figure, folder), matrix_table(found["matrix"]) + "\n"]
    return out


def completion_part(files: dict, data, dataset: str, folder: Path) -> list[str]:
    """The conditional NLL of the hidden rows, paired between models, and the completions of
    each model's first run."""
    summaries = {m: COMPLETION.read(f["completion"]) for m, f in files.items()}
    first = next(iter(summaries.values()))
    estimates = {
        replicate_of(m)[0] for m, summary in summaries.items() if summary["likelihood"] != "exact"
    }
    read = {"levels": data.levels, "shape": data.shape}
    nlls = per_model_nlls(files, "completion_images", "nll", len(data.test), **read)
    shown_runs = [m for m in files if replicate_of(m)[1] == 0]
    filled = {
        m: COMPLETIONS.read(files[m]["completion_images"], count=len(data.test), **read)
        for m in shown_runs
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
    note = f" ({', '.join(sorted(estimates))}: an estimate, not exact)" if estimates else ""
    return [
        "### Completion\n",
        f"The bottom {first['hidden_rows']:.0%} of every test image's rows hidden; paired "
        f"differences of the true hidden part's conditional NLL, nats{note}:\n",
        difference_matrix(nlls, set()) + "\n",
        link(f"{dataset} completions", figure, folder),
    ]


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
        outputs=[
            path(kind)
            for kind in ("report", "report_html", "likelihoods", "sample_quality", "verdicts")
        ],
    )


def files_read(inputs: dict) -> list[str]:
    """Every file the report reads, from its manifest."""
    files = [*inputs["data"].values(), *inputs["checks"].values(), *inputs["errors"].values()]
    files += list(inputs.get("features", {}).values())
    for models in inputs["models"].values():
        files += [file for kinds in models.values() for file in kinds.values()]
    return files
