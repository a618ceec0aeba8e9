"""The README's commands and the shipped configs, planned as written (dry runs in the checkout):
config layering, settings that keep their types from the YAML to the optimizer, and code inputs
that rerun exactly the jobs that run an edited file."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_workflow import REPO

from arbench import train as train_module
from arbench.core import plan
from arbench.data.format import save_dataset
from arbench.training.trainer import make_optimizer

pytestmark = pytest.mark.slow


def dry_run(*args: str, cwd: Path = REPO) -> str:
    """The plan of every job (--forceall: whatever results/ the checkout holds), printed."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "-n", "-p", "--forceall", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def shell_commands(output: str, stage: str) -> list[list[str]]:
    """The argument lists after `python -m arbench.<stage>` of every planned job."""
    commands = []
    for line in output.splitlines():
        if line.startswith("Shell command:") and f"-m arbench.{stage} " in line:
            words = shlex.split(line.removeprefix("Shell command:"))
            words = words[words.index(f"arbench.{stage}") + 1 : words.index(">")]
            commands.append(words)
    return commands


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def train_settings(output: str) -> dict[tuple[str, str], dict]:
    """(dataset, model) -> the settings its train job is given."""
    found = {}
    for words in shell_commands(output, "train"):
        dataset = Path(option(words, "--data")).stem
        found[dataset, option(words, "--model")] = json.loads(option(words, "--settings"))
    return found


def prepare_specs(output: str) -> dict[str, dict]:
    return {
        Path(option(words, "--out")).stem: json.loads(option(words, "--spec"))
        for words in shell_commands(output, "prepare")
    }


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_every_change_one_thing_command_of_the_readme_plans_what_it_says():
    section = readme_section("Change one thing")
    commands = re.findall(r"^\.venv/bin/snakemake (.*?)(?:\s+#.*)?$", section, re.MULTILINE)
    assert len(commands) >= 2
    for command in commands:
        words = [w for w in shlex.split(command) if w not in ("--cores", "all", "-n")]
        output = dry_run(*words)
        settings = train_settings(output)
        defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        for (dataset, model), given in settings.items():
            overrides = defaults["datasets"][dataset].get("overrides", {}).get(model, {})
            if model == "nade":  # 300 wherever the dataset does not override it
                assert given["hidden"] == overrides.get("hidden", 300), dataset
                assert type(given["hidden"]) is int
            elif model == "made":
                assert given["hidden"] == defaults["models"]["made"]["hidden"]
        assert settings["mnist", "nade"]["hidden"] == 300


@pytest.mark.parametrize("name", ["full.yaml", "study.yaml"])
def test_a_shipped_config_file_is_exactly_what_it_says(name):
    written_config = yaml.safe_load((REPO / "config" / name).read_text())
    output = dry_run("--configfile", f"config/{name}")
    specs = prepare_specs(output)
    assert set(specs) == set(written_config["datasets"])  # anime neither optional nor left out
    assert set(specs["mnist"]) == {"source", "url"}  # no binarize or split from the default run
    settings = train_settings(output)
    assert {d for d, _ in settings} == set(written_config["datasets"])
    for (dataset, run), given in settings.items():
        model = plan.replicate_of(run)[0]
        written = {
            **written_config["models"].get(model, {}),
            **written_config["datasets"][dataset].get("overrides", {}).get(model, {}),
        }
        for key, value in written.items():
            assert given[key] == value and type(given[key]) is type(value), (dataset, run, key)


def test_the_study_trains_every_model_with_three_seeds_the_mixtures_too():
    study = yaml.safe_load((REPO / "config" / "study.yaml").read_text())
    settings = train_settings(dry_run("--configfile", "config/study.yaml"))
    for dataset, entry in study["datasets"].items():
        for model in entry["models"]:
            runs = sorted(
                run for d, run in settings if d == dataset and plan.replicate_of(run)[0] == model
            )
            assert [settings[dataset, run]["seed"] for run in runs] == [0, 1, 2], (dataset, model)


def test_a_users_config_file_runs_only_what_it_names(tmp_path):
    mine = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    mine["datasets"] = {"digits": {**mine["datasets"]["mnist"], "models": ["made"]}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mine))
    output = dry_run("--configfile", str(tmp_path / "mine.yaml"))
    assert set(train_settings(output)) == {("digits", "made")}


def test_nested_overrides_of_the_full_config_keep_their_types():
    output = dry_run(
        "--configfile",
        "config/full.yaml",
        "--config",
        'models={"made": {"masks": 4, "hidden": [300, 300]}}',
        "samples={count: 50}",
    )
    settings = train_settings(output)
    made = settings["mnist", "made"]
    assert made["masks"] == 4 and made["hidden"] == [300, 300] and made["lr"] == 0.0002
    assert all(type(v) is int for v in made["hidden"])
    counts = {option(w, "--n") for w in shell_commands(output, "sample")}
    assert counts == {"250"}  # five draws (full.yaml's, kept beside the overridden count) of 50


@pytest.mark.parametrize("name", ["config.yaml", "full.yaml", "study.yaml"])
def test_every_setting_reaches_the_model_and_optimizer_with_its_type(name, tmp_path, monkeypatch):
    """Runs each train command the rule would run, in this process, up to the point where the
    model and its optimizer exist, and compares what they got with what the YAML says."""
    config = yaml.safe_load((REPO / "config" / name).read_text())
    commands = shell_commands(dry_run("--configfile", f"config/{name}"), "train")
    planned, _ = plan.datasets_in_run(config)
    assert len(commands) == sum(len(runs) for runs in planned.values())
    images = (np.random.default_rng(0).random((30, 1, 2, 2)) < 0.5).astype(np.uint8)
    splits = {"train": images, "valid": images, "test": images}
    data = save_dataset(tmp_path / "d.npz", splits, 2, {"source": "test"})
    seen = {}

    class Reached(Exception):
        """Raised once the settings have arrived: nothing needs to train."""

    class Trainer:
        def __init__(self, model, data, training, checkpoint, metrics):
            optimizer = make_optimizer(model, training)
            seen["model"], seen["training"] = dict(model.config), training
            seen["optimizer"] = {k: optimizer.param_groups[0][k] for k in ("lr", "weight_decay")}
            raise Reached

    def build(model_name, shape, levels, architecture):
        model = original_build(model_name, shape, levels, architecture)
        if not plan.model_entry(model_name).neural:
            seen["model"] = dict(model.config)
            raise Reached
        return model

    original_build = train_module.build_model
    monkeypatch.setattr(train_module, "Trainer", Trainer)
    monkeypatch.setattr(train_module, "build_model", build)
    for words in commands:
        dataset, run = Path(option(words, "--data")).stem, option(words, "--model")
        model, replicate = plan.replicate_of(run)
        words[words.index("--data") + 1] = str(data)
        words[words.index("--out") + 1] = str(tmp_path / "m.pt")
        seen.clear()
        train_module.main(words)  # fails on purpose once Reached is raised
        written = {
            **config["models"].get(model, {}),
            **config["datasets"][dataset].get("overrides", {}).get(model, {}),
        }
        received = {**seen["model"], **seen.get("training", {})}
        for key, value in written.items():
            assert received[key] == value and type(received[key]) is type(value), (model, key)
        assert received["seed"] == config["seed"] + replicate
        if plan.MODELS[model].neural:
            assert seen["optimizer"]["lr"] == received["lr"]
            assert type(seen["optimizer"]["weight_decay"]) is float
            assert seen["optimizer"]["weight_decay"] == received["weight_decay"]


def test_the_full_config_trains_each_model_with_several_seeds():
    full = yaml.safe_load((REPO / "config" / "full.yaml").read_text())
    settings = train_settings(dry_run("--configfile", "config/full.yaml"))
    replicates = full["replicates"]
    assert replicates >= 3
    for dataset, entry in full["datasets"].items():
        for model in entry["models"]:
            runs = [plan.instance(model, r) for r in range(replicates)]
            seeds = [settings[dataset, run]["seed"] for run in runs]
            assert seeds == [full["seed"] + r for r in range(replicates)], (dataset, model)
