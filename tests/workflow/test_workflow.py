"""The real workflow on a tiny config in a temporary directory: outputs, reruns, bad configs."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_workflow import REPO, TINY, run_snakemake, snakemake, snakemake_command

from arbench.core.plan import METRICS
from arbench.data import load_dataset
from arbench.report.tables import model_likelihoods, number
from arbench.training import convergence
from arbench.training.checkpoints import load_model

pytestmark = pytest.mark.slow


def planned_jobs(workdir: Path, config: dict) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would run."""
    return jobs_in(snakemake(workdir, config, "--dry-run").stdout)


def copy_of_the_code(target: Path) -> Path:
    """A private copy of the checkout's workflow and package, for a test that edits code: an edit
    of the repository's own files would change the code under the workflows other test workers
    run meanwhile."""
    target.mkdir()
    for part in ("Snakefile", "workflow", "config", "profiles", "envs", "src"):
        copy_ = shutil.copytree if (REPO / part).is_dir() else shutil.copy
        copy_(REPO / part, target / part, **({"ignore": IGNORED} if part == "src" else {}))
    return target


IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info")


def dry_run_with(checkout: Path, workdir: Path, config: dict) -> subprocess.CompletedProcess:
    """A dry run in `workdir` of the workflow and package in `checkout`."""
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    command = [
        *(sys.executable, "-m", "snakemake", "-s", str(checkout / "Snakefile")),
        *("-d", str(workdir), "--configfile", str(workdir / "tiny.yaml"), "--cores", "2"),
        "--dry-run",
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=checkout.parent)


def jobs_in(output: str) -> set[tuple[str, str]]:
    jobs, rule = set(), None
    for line in output.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line.strip()):
            if rule is not None:
                jobs.add((rule, ""))
            rule = match.group(1)
        elif rule is not None and line.strip().startswith("wildcards:"):
            jobs.add((rule, line.split(":", 1)[1].strip()))
            rule = None
    if rule is not None:
        jobs.add((rule, ""))
    return jobs


MODEL_RULES = ("train", "sample", "examine", "quality")
# a dataset's feature spaces, metric check and error-bar check
DATASET_RULES = ("prepare", "features", "metric_check", "error_check")
ALL = (*DATASET_RULES, *MODEL_RULES)  # what a new dataset file reruns


def model_jobs(dataset: str, model: str) -> set[tuple[str, str]]:
    wildcards = f"dataset={dataset}, model={model}"
    return {(rule, wildcards) for rule in MODEL_RULES}


FINAL = {("report", ""), ("all", "")}
OUTCOMES = "supported|contradicted|equal within the margin|not resolved|not tested|not decided"


def test_every_output_exists_and_is_well_formed(finished):
    for dataset, entry in TINY["datasets"].items():
        data = load_dataset(finished / "results" / "data" / f"{dataset}.npz", verify=True)
        for model in entry["models"]:
            trained = load_model(finished / "results" / "models" / dataset / f"{model}.pt")
            assert trained.name == model
            samples = np.load(finished / "results" / "samples" / dataset / f"{model}.npz")[
                "samples"
            ]
            # three independent draws of 30, whose spread is the model's error
            draws = TINY["samples"]["draws"]
            assert samples.shape == (30 * draws, *data.shape) and samples.max() < data.levels
            metrics = json.loads(
                (finished / "results/metrics" / dataset / f"{model}.json").read_text()
            )
            assert metrics["exact"] == (model not in ("gmm", "pca_gmm"))  # full covariance
            if model == "gmm_diag":  # the exact NLL is at or below the dequantization bound
                slack = 4 * metrics["bound_monte_carlo_se"]
                assert metrics["bound_nll_nats"] >= metrics["nll_nats"] - slack
            assert np.isfinite(metrics["nll_nats"]) and metrics["nll_nats_se"] >= 0
            if len(np.unique(data.test.reshape(len(data.test), -1), axis=0)) > 1:
                assert metrics["nll_nats_se"] > 0
            assert metrics["bits_per_dim"] == pytest.approx(
                metrics["nll_nats"] / (data.dims * np.log(2))
            )
            for stage in ("train", "sample", "examine", "quality"):
                assert (finished / "results/logs" / stage / dataset / f"{model}.log").exists()
                assert (finished / "results/benchmarks" / stage / dataset / f"{model}.tsv").exists()
        for model in entry["models"]:
            assert (finished / "results/figures" / f"{dataset}_samples_{model}.png").exists()
    table = (finished / "results/likelihoods.csv").read_text().splitlines()
    assert len(table) == 1 + sum(len(e["models"]) for e in TINY["datasets"].values())
    report = (finished / "results/report.md").read_text()
    assert all(f"## {name}" in report for name in TINY["datasets"])
    assert "upper bound" in report
    assert not list((finished / "results").rglob("*.ckpt"))


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_every_number_in_the_likelihood_table_comes_from_an_evaluate_output(finished):
    columns, rows = read_csv(finished / "results/likelihoods.csv")
    assert columns == [
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
        "origin",
    ]
    for row in rows:
        metrics = json.loads(
            (finished / "results/metrics" / row["dataset"] / f"{row['model']}.json").read_text()
        )
        for key in ("nll_nats", "nll_nats_se", "bits_per_dim", "bits_per_dim_se"):
            assert float(row[key]) == metrics[key], (row, key)
        assert int(row["test_images"]) == metrics["test_images"]
        assert row["likelihood"] == ("exact" if metrics["exact"] else "upper bound")
        assert row["device"] == (metrics["device"] or "")
        assert row["bound_nll_nats"] == str(metrics.get("bound_nll_nats", ""))
        record = metrics["training"]  # how the training ended, from the model file
        assert row["training_ended_by"] == record["ended_by"]
        assert row["training_epochs"] == str(record["epochs"])
        assert row["finished_learning"] == str(not convergence.unfinished(record))
        assert row["origin"] == "arbench"  # the tiny run's models are all arbench's own
    # each dataset's section gives each model's NLL over its runs (one run each here), to its
    # error's digits
    for dataset in {row["dataset"] for row in rows}:
        models = model_likelihoods(
            [
                r | {"finished_learning": r["finished_learning"] == "True"}
                for r in likelihood_rows_of(finished)
                if r["dataset"] == dataset
            ]
        )
        section = report_section(finished, dataset)
        for model, found in models.items():
            assert f"| {model} | {number(found['mean'], found['se'])} |" in section, model


def likelihood_rows_of(finished):
    _, rows = read_csv(finished / "results/likelihoods.csv")
    return [
        {
            **r,
            "nll_nats": float(r["nll_nats"]),
            "nll_nats_se": float(r["nll_nats_se"]),
            "bits_per_dim": float(r["bits_per_dim"]),
        }
        for r in rows
    ]


def test_every_number_in_the_sample_quality_table_comes_from_a_quality_output(finished):
    columns, rows = read_csv(finished / "results/sample_quality.csv")
    assert columns[:4] == ["dataset", "set", "role", "draw"]
    assert all(metric in columns for metric in METRICS)
    draws = range(TINY["samples"]["draws"])  # every draw of every model's samples
    for dataset, entry in TINY["datasets"].items():
        check = json.loads((finished / "results/checks" / f"{dataset}.json").read_text())
        ours = {(r["set"], r["draw"]): r for r in rows if r["dataset"] == dataset}
        assert set(ours) == {(m, str(d)) for m in entry["models"] for d in draws} | {
            (name, "") for name in check["sets"]
        }
        for (name, draw), row in ours.items():
            if row["role"] == "model":
                path = finished / "results/quality" / dataset / f"{name}.json"
                model = json.loads(path.read_text())["model"]
                measured = {m: {"value": v} for m, v in model["draws"][int(draw)].items()}
                if int(draw) < len(model["c2st_accuracy"]):
                    measured["c2st_accuracy"] = model["c2st_accuracy"][int(draw)]
            else:
                measured = check["sets"][name]
            for metric in measured:
                if metric in METRICS:
                    assert float(row[metric]) == measured[metric]["value"], (dataset, name, metric)
    report = (finished / "results/report.md").read_text()
    for dataset in TINY["datasets"]:
        assert re.search(rf"^\| {dataset} \| ", report, re.M)
        assert re.search(
            rf"Every autoregressive model against every mixture: \*\*({OUTCOMES})", report
        )
    assert "## How sample quality is measured" in report and "## The rule" in report


def test_networks_stopped_by_their_epoch_cap_while_improving_are_not_judged(finished):
    """The tiny config caps NADE and MADE at 2 epochs, far from converged: the table says so,
    and no dataset's verdict counts metrics over them."""
    report = (finished / "results/report.md").read_text()
    for dataset, entry in TINY["datasets"].items():
        section = report.split(f"## {dataset}\n", 1)[1].split("\n## ", 1)[0]
        for model in ("nade", "made", "pixelcnn"):
            if model in entry["models"]:
                row = next(line for line in section.splitlines() if line.startswith(f"| {model} |"))
                assert "unfinished" in row, row
        verdict = re.search(
            rf"Every autoregressive model against every mixture: \*\*({OUTCOMES})\*\*", section
        )
        assert verdict.group(1) in ("not decided", "not tested"), verdict.group(0)
        found = json.loads((finished / "results/verdicts.json").read_text())[dataset]
        for cells in found["matrix"].values():
            for cell in cells.values():
                assert cell["outcome"] == "not decided" and cell["unfinished"], cell
                assert cell["agreement"]["share"] == 1.0


def test_the_html_report_embeds_every_figure_and_table(finished):
    snakemake(finished, TINY, "--report", "report.html")
    html = (finished / "report.html").read_text()
    figures = sorted((finished / "results/figures").glob("*.png"))
    assert figures
    for path in [*figures, finished / "results/likelihoods.csv"]:
        assert path.name in html, path.name
    assert "sample_quality.csv" in html


def test_a_second_run_plans_nothing(finished):
    assert planned_jobs(finished, TINY) == set()


def test_changing_one_models_hyperparameter_reruns_only_that_model(finished):
    config = copy.deepcopy(TINY)
    config["models"]["nade"]["hidden"] = 9
    # NADE is no source of the error-bar check (the declared pair's models are): it stays
    expected = model_jobs("mnist", "nade") | model_jobs("atari", "nade") | FINAL
    assert planned_jobs(finished, config) == expected


def test_a_per_dataset_override_reruns_only_that_branch_model(finished):
    config = copy.deepcopy(TINY)
    config["datasets"]["atari"]["overrides"] = {"made": {"hidden": [12]}}
    # MADE, of the declared pair, is what Atari's error-bar check draws networks' sets from
    expected = model_jobs("atari", "made") | FINAL | {("error_check", "dataset=atari")}
    assert planned_jobs(finished, config) == expected


def test_changing_a_datasets_preprocessing_reruns_only_its_branch(finished):
    config = copy.deepcopy(TINY)
    config["datasets"]["atari"]["levels"] = 8
    assert planned_jobs(finished, config) == jobs_of(ALL, datasets={"atari"}) | FINAL


def jobs_of(rules: tuple[str, ...], models=None, datasets=None) -> set[tuple[str, str]]:
    """Every job of `rules` on the tiny config, optionally only some models or datasets."""
    jobs = set()
    for dataset, entry in TINY["datasets"].items():
        if datasets is not None and dataset not in datasets:
            continue
        jobs |= {(rule, f"dataset={dataset}") for rule in rules if rule in DATASET_RULES}
        for model in entry["models"]:
            if models is None or model in models:
                wildcards = f"dataset={dataset}, model={model}"
                jobs |= {(rule, wildcards) for rule in rules if rule in MODEL_RULES}
    return jobs


MEASURING = ("quality", "metric_check", "error_check")  # the checks run the same measurements
RETRAINED = jobs_of(MODEL_RULES) | jobs_of(("error_check",))  # retrained sources are drawn again
EDITS = {
    "evaluate.py": jobs_of(("examine",)),
    "quality.py": jobs_of(("quality",)),
    "metrics/measurement.py": jobs_of(MEASURING),
    "metrics/measures.py": jobs_of(MEASURING),
    "metrics/known_answers.py": jobs_of(("metric_check",)),
    "metric_check.py": jobs_of(("metric_check",)),
    "error_check.py": jobs_of(("error_check",)),
    "metrics/error_bars.py": jobs_of(("error_check",)),
    "features.py": jobs_of(("features", *MEASURING)),
    "metrics/spaces.py": jobs_of(("features", *MEASURING)),
    "complete.py": jobs_of(("examine",)),
    "examine.py": jobs_of(("examine",)),
    "sample.py": jobs_of(("sample", "quality")),  # new samples are measured again
    "report/__init__.py": set(),
    "report/figures.py": set(),
    "metrics/verdict.py": set(),
    "train.py": RETRAINED,
    "training/trainer.py": RETRAINED,
    # the error-bar check draws from the declared pair (MADE and the PCA-GMM) where a dataset
    # trains them, else from its first model of the missing family: MADE and the PCA-GMM on
    # MNIST, MADE and the full GMM on Atari and anime
    "models/made.py": jobs_of(MODEL_RULES, models={"made"}) | jobs_of(("error_check",)),
    "models/pixelcnn.py": jobs_of(MODEL_RULES, models={"pixelcnn"}),
    "models/nade_kernel.c": jobs_of(MODEL_RULES, models={"nade"}),
    "models/distributions.py": jobs_of(MODEL_RULES, models={"nade", "made", "pixelcnn"})
    | jobs_of(("error_check",)),
    "models/gmm.py": jobs_of(MODEL_RULES, models={"gmm", "gmm_diag", "pca_gmm"})
    | jobs_of(("error_check",)),
    "models/mob.py": jobs_of(MODEL_RULES, models={"mob"}),
    "data/atari.py": jobs_of(ALL, datasets={"atari"}),
    "prepare.py": jobs_of(ALL),
}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    return copy_of_the_code(tmp_path_factory.mktemp("code") / "checkout")


@pytest.mark.parametrize("edited", sorted(EDITS))
def test_editing_a_source_file_reruns_exactly_the_jobs_that_run_it(finished, checkout, edited):
    source = checkout / "src" / "arbench" / edited
    original = source.read_bytes()
    comment = b"// edited by test_workflow\n" if edited.endswith(".c") else b"# edited\n"
    try:
        source.write_bytes(original + comment)
        planned = dry_run_with(checkout, finished, TINY)
        assert planned.returncode == 0, planned.stderr[-3000:]
        assert jobs_in(planned.stdout) == EDITS[edited] | FINAL
    finally:
        source.write_bytes(original)


def test_absent_optional_dataset_is_left_out_and_reported(tmp_path):
    jobs = planned_jobs(tmp_path, TINY)  # no faces/ folder here
    assert ("prepare", "dataset=anime") not in jobs
    assert ("prepare", "dataset=atari") in jobs


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["datasets"]["mnist"].update(source="imagenet"), "imagenet"),
        (lambda c: c["datasets"]["mnist"].update(models=["nade", "pixelsnail"]), "pixelsnail"),
        (lambda c: c["models"]["made"].update(hidden=[-5]), "-5"),
        (lambda c: c.pop("samples"), "samples"),
        (lambda c: c["models"]["nade"].update(hiden=10), "hiden"),
        (lambda c: c["datasets"]["atari"].update(size=[0, 8]), "size"),
        # a quoted number in a file is text there: only --config strings are typed by the schema
        (lambda c: c["models"]["nade"].update(hidden="8"), "models.nade.hidden: '8' is text"),
        (lambda c: c.update(replicates={"nade": 0}), "replicates.nade: must be at least 1, got 0"),
        (lambda c: c.update(replicates={"nade": "2"}), "replicates.nade: '2' is text, not a num"),
        # rules between settings, or between settings and the data, the schema cannot state
        (
            lambda c: c["models"]["made"].update(validate_every=3, patience=2),
            "models.made (on dataset atari): patience 2 is shorter than validate_every 3",
        ),
        (
            lambda c: c["datasets"]["atari"].update(models=["mob"]),
            "a mixture of Bernoullis needs binary images, but this dataset has 4 levels",
        ),
        (
            lambda c: c["datasets"]["atari"].update(overrides={"nade": {"output": "bernoulli"}}),
            "datasets.atari.overrides.nade (on dataset atari): output: bernoulli needs binary",
        ),
        (lambda c: c["models"]["pixelcnn"].update(kernel=4), "kernel must be odd"),
        (lambda c: c["models"]["nade"].update(ordering="random"), "cannot complete the bottom"),
        (lambda c: c["completion"].update(hidden_rows=0.05), "hides no row"),
    ],
    ids=[
        "unknown-source",
        "unknown-model",
        "negative-size",
        "missing-key",
        "typo",
        "zero-size",
        "quoted-number",
        "no-replicate",
        "quoted-replicates",
        "patience-shorter-than-validation",
        "mob-on-grey-levels",
        "bernoulli-on-grey-levels",
        "even-kernel",
        "random-order-cannot-complete",
        "completion-hides-nothing",
    ],
)
def test_invalid_config_stops_before_any_job_naming_the_key(tmp_path, mutate, message):
    config = copy.deepcopy(TINY)
    mutate(config)
    result = snakemake(tmp_path, config, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_a_dataset_named_twice_in_a_config_file_is_refused_naming_the_key_and_lines(tmp_path):
    config = copy.deepcopy(TINY)
    config["datasets"] = {"mnist": TINY["datasets"]["mnist"], "again": TINY["datasets"]["atari"]}
    text = yaml.safe_dump(config, sort_keys=False).replace("  again:\n", "  mnist:\n")
    (tmp_path / "twice.yaml").write_text(text)
    first = text.splitlines().index("  mnist:") + 1
    second = text.splitlines().index("  mnist:", first) + 1
    result = run_snakemake(tmp_path, "--configfile", str(tmp_path / "twice.yaml"), check=False)
    assert result.returncode != 0
    assert (
        f"twice.yaml line {second}: key 'mnist' appears twice in one mapping (first on line "
        f"{first})" in result.stdout + result.stderr
    )
    assert not (tmp_path / "results").exists()


def test_lint_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr


def test_a_failing_job_leaves_no_output_that_looks_complete(tmp_path):
    config = copy.deepcopy(TINY)
    config["datasets"] = {"atari": {**TINY["datasets"]["atari"], "games": ["Pongg"]}}
    result = snakemake(tmp_path, config, check=False)
    assert result.returncode != 0
    assert "unknown Atari game 'Pongg'" in (tmp_path / "results/logs/prepare/atari.log").read_text()
    assert not (tmp_path / "results/data/atari.npz").exists()
    assert not (tmp_path / "results/data/atari.json").exists()
    assert not list((tmp_path / "results/data").glob("*.part"))


def test_a_second_run_in_the_same_directory_is_refused_by_the_lock(tmp_path):
    config = copy.deepcopy(TINY)
    config["datasets"] = {"atari": {**TINY["datasets"]["atari"], "models": ["gmm"]}}
    command = snakemake_command(tmp_path, config)
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while not list((tmp_path / ".snakemake" / "locks").glob("*")) and time.time() < deadline:
            time.sleep(0.1)
        second = subprocess.run(command, capture_output=True, text=True)
        assert second.returncode != 0
        assert "cannot be locked" in second.stdout + second.stderr
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0  # the first run is unharmed
    assert (tmp_path / "results/report.md").exists()


def test_the_local_profile_plans_the_whole_run(tmp_path):
    profile = str(REPO / "profiles" / "local")
    result = snakemake(tmp_path, TINY, "--profile", profile, "--dry-run")
    assert "rule train:" in result.stdout and "rule report:" in result.stdout


def test_models_trained_with_several_seeds_are_pooled_in_the_verdict(tmp_path):
    config = copy.deepcopy(TINY)
    config["replicates"] = 2
    config["datasets"] = {"mnist": {**TINY["datasets"]["mnist"], "models": ["gmm_diag", "made"]}}
    snakemake(tmp_path, config)
    with open(tmp_path / "results/likelihoods.csv", newline="") as handle:
        runs = {row["model"] for row in csv.DictReader(handle)}
    assert runs == {"gmm_diag", "gmm_diag.r1", "made", "made.r1"}
    first = load_model(tmp_path / "results/models/mnist/made.pt").config["seed"]
    assert load_model(tmp_path / "results/models/mnist/made.r1.pt").config["seed"] == first + 1
    report = (tmp_path / "results/report.md").read_text()
    # the report's tables pool each model's runs: one row a model, its runs counted
    assert re.search(r"^\| made \| .* \| 2 of 2 ", report, re.MULTILINE)
    assert "| made.r1 |" not in report
    found = json.loads((tmp_path / "results/verdicts.json").read_text())["mnist"]
    assert found["models"]["made"]["recall"]["runs"] == 2
    assert set(found["matrix"]) == {"made"} and set(found["matrix"]["made"]) == {"gmm_diag"}


def report_section(workdir: Path, dataset: str) -> str:
    report = (workdir / "results/report.md").read_text()
    return report.split(f"## {dataset}\n", 1)[1].split("\n## ", 1)[0]


def test_deleting_a_result_adding_a_model_and_adding_a_dataset_each_rerun_what_they_touch(
    finished, tmp_path
):
    """Each change plans exactly the jobs it touches, and the rerun's report shows it."""
    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir, symlinks=True)  # the shared run stays as it was

    (workdir / "results/models/mnist/mob.pt").unlink()
    assert planned_jobs(workdir, TINY) == model_jobs("mnist", "mob") | FINAL
    snakemake(workdir, TINY)
    assert (workdir / "results/models/mnist/mob.pt").exists()
    assert "| mob |" in report_section(workdir, "mnist")

    config = copy.deepcopy(TINY)
    config["datasets"]["atari"]["models"].append("gmm_diag")
    assert planned_jobs(workdir, config) == model_jobs("atari", "gmm_diag") | FINAL
    snakemake(workdir, config)
    assert "| gmm_diag |" in report_section(workdir, "atari")

    config["datasets"]["digits"] = {**TINY["datasets"]["mnist"], "seed": 1, "models": ["mob"]}
    planned = planned_jobs(workdir, config)
    new_branch = {(rule, "dataset=digits") for rule in DATASET_RULES} | model_jobs("digits", "mob")
    assert planned == new_branch | FINAL
    snakemake(workdir, config)
    assert "| mob |" in report_section(workdir, "digits")
    assert planned_jobs(workdir, config) == set()  # and the provenance of every job is complete
    assert "missing provenance" not in snakemake(workdir, config, "--dry-run").stdout


def test_data_named_outside_results_reruns_a_job_when_a_file_changes_not_when_its_times_do(
    finished, tmp_path
):
    """A read-only share provisioned again (each session's ../shared is) brings the same bytes
    with fresh times: it reruns nothing. A changed file reruns the jobs that read it."""
    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir, symlinks=True)
    digits = tmp_path / "labelled"
    digits.mkdir()
    (digits / "t10k-labels-idx1-ubyte.gz").write_bytes(b"labels")
    config = copy.deepcopy(TINY)
    config["datasets"]["mnist"]["labelled_test"] = str(digits)
    snakemake(workdir, config, "--until", "features")
    after_features = planned_jobs(workdir, config)
    assert ("features", "dataset=mnist") not in after_features
    later = time.time() + 3600
    for path in (digits, *digits.iterdir()):
        os.utime(path, (later, later))
    assert planned_jobs(workdir, config) == after_features
    (digits / "t10k-labels-idx1-ubyte.gz").write_bytes(b"other labels")
    assert ("features", "dataset=mnist") in planned_jobs(workdir, config)


def test_removing_a_model_reruns_only_the_report(finished):
    config = copy.deepcopy(TINY)
    config["datasets"]["atari"]["models"].remove("nade")
    assert planned_jobs(finished, config) == FINAL
    # the error-bar check draws from the declared pair's MADE: without it, from Atari's first
    # network (NADE) instead
    config = copy.deepcopy(TINY)
    config["datasets"]["atari"]["models"].remove("made")
    assert planned_jobs(finished, config) == jobs_of(("error_check",), datasets={"atari"}) | FINAL


def test_a_finished_run_copied_with_its_code_to_another_folder_plans_nothing(finished, tmp_path):
    """Code is recorded by content, not by where it lies: a copy of the checkout and of the run
    (as a move, or an install in place of the copy, makes them) has nothing to redo."""
    checkout = copy_of_the_code(tmp_path / "checkout")
    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir, symlinks=True)
    result = dry_run_with(checkout, workdir, TINY)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout
    probe = [sys.executable, "-c", "import arbench, sys; print(arbench.__file__)"]
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    imported = subprocess.run(probe, capture_output=True, text=True, env=env).stdout
    assert imported.startswith(str(checkout)), imported  # the copy's code was the one planned with


def test_results_the_config_no_longer_makes_are_listed_and_removed_on_request(finished, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir, symlinks=True)
    config = copy.deepcopy(TINY)
    del config["datasets"]["atari"]
    config["datasets"]["mnist"]["models"].remove("mob")
    listed = snakemake(workdir, config, "stale").stdout.splitlines()
    stale = {line for line in listed if line.startswith("results/")}
    assert "results/data/atari.npz" in stale and "results/figures/atari_samples_real.png" in stale
    assert "results/figures/atari_pairs.png" in stale
    assert "results/models/mnist/mob.pt" in stale and "results/logs/train/mnist/mob.log" in stale
    assert "results/figures/mnist_samples_mob.png" in stale
    assert "results/models/mnist/made.pt" not in stale and "results/report.md" not in stale
    assert all((workdir / line).exists() for line in stale)
    snakemake(workdir, config, "remove_stale")
    assert not any((workdir / line).exists() for line in stale)
    assert "no stale files under results/" in snakemake(workdir, config, "stale").stdout
    assert (workdir / "results/models/mnist/made.pt").exists()


def test_a_damaged_result_is_made_again_in_the_same_run_and_a_dry_run_shows_it(finished, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir, symlinks=True)
    data = workdir / "results/data/atari.npz"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # an interrupted copy
    damaged = data.read_bytes()
    # the dry run plans every job the real run will run, and leaves the file where it was
    planned = snakemake(workdir, TINY, "--dry-run")
    damage = "results/data/atari.npz is damaged: is not a readable .npz"
    assert damage in planned.stdout + planned.stderr
    assert planned_jobs(workdir, TINY) == jobs_of(ALL, datasets={"atari"}) | FINAL
    assert (
        data.read_bytes() == damaged and not (workdir / "results/data/atari.npz.damaged").exists()
    )
    # one command: set aside (kept for a look, listed as stale) and made again in the same run
    ran = snakemake(workdir, TINY)
    assert "Set aside as results/data/atari.npz.damaged: this run makes it again" in (
        ran.stdout + ran.stderr
    )
    assert (workdir / "results/data/atari.npz.damaged").read_bytes() == damaged
    assert "results/data/atari.npz.damaged" in snakemake(workdir, TINY, "stale").stdout
    assert planned_jobs(workdir, TINY) == set()


GOLDEN = Path(__file__).resolve().parent / "golden"
TIMED = {"train_seconds"}  # wall time: the one column that differs between two equal runs


def machine() -> dict:
    import platform

    import torch

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


@pytest.mark.parametrize("table", ["likelihoods.csv", "sample_quality.csv"])
def test_the_tiny_runs_numbers_are_those_recorded(finished, table):
    """Nothing the pipeline computes changes unless it is meant to: the tiny run's tables equal
    the ones recorded in tests/workflow/golden/ (copy the new tables there when a change is
    meant to move them, and say so). Floating point differs between processors and library
    builds, so the comparison runs on the kind of machine that recorded them."""
    recorded_on = json.loads((GOLDEN / "machine.json").read_text())
    if machine() != recorded_on:
        pytest.skip(f"the tables were recorded on {recorded_on}, this is {machine()}")
    _, recorded = read_csv(GOLDEN / table)
    _, made = read_csv(finished / "results" / table)
    strip = [{k: v for k, v in row.items() if k not in TIMED} for row in made]
    assert strip == [{k: v for k, v in row.items() if k not in TIMED} for row in recorded]


def test_a_config_edited_while_the_workflow_runs_reruns_what_the_edit_touches(tmp_path):
    """The running workflow keeps the config it started with; the next run sees the edit and
    reruns exactly the jobs whose settings changed, with what depends on them."""
    config = copy.deepcopy(TINY)
    config["datasets"] = {"mnist": {**TINY["datasets"]["mnist"], "models": ["mob", "made"]}}
    command = snakemake_command(tmp_path, config)
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = tmp_path / "results/logs/train/mnist/made.log"
        deadline = time.time() + 300
        while not started.exists() and running.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert started.exists(), "the training job never started"
        edited = copy.deepcopy(config)
        edited["models"]["made"]["hidden"] = [12]
        (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(edited))  # mid-run, by hand
    finally:
        output = running.communicate(timeout=600)[0]
    assert running.returncode == 0, output[-3000:]
    trained = load_model(tmp_path / "results/models/mnist/made.pt")
    assert trained.config["hidden"] == [16]  # the run kept what it started with
    expected = model_jobs("mnist", "made") | FINAL | {("error_check", "dataset=mnist")}
    assert planned_jobs(tmp_path, edited) == expected
