"""The plan shared by the workflow and the stages: one set of defaults, typed settings, and code
inputs read off the imports."""

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from arbench.core import plan
from arbench.core.code_inputs import PACKAGE_DIR, code_files, content_digest
from arbench.core.configuration import coerce, load_schema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
# Job-level settings the workflow fills in from the top of the config, not from `models`.
JOB_KEYS = {"seed", "device", "threads"}


def schema_property(definition: dict) -> dict:
    """A property's schema with its `$ref` followed (keys beside the `$ref` win)."""
    while "$ref" in definition:
        target = SCHEMA
        for part in definition["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        definition = {**target, **{k: v for k, v in definition.items() if k != "$ref"}}
    return definition


@pytest.mark.parametrize("model", sorted(plan.MODELS))
def test_the_schema_states_the_code_defaults_of_every_model_setting(model):
    properties = SCHEMA["$defs"][model]["properties"]
    settings = plan.MODELS[model].settings
    assert set(properties) == set(settings) - JOB_KEYS
    for key, definition in properties.items():
        assert schema_property(definition)["default"] == settings[key], key


def model_name_pattern(definition: dict) -> str:
    return schema_property(definition)["pattern"]


def test_the_schema_names_every_model_of_the_registry_wherever_models_are_named():
    dataset = SCHEMA["$defs"]["dataset"]["properties"]
    assert set(SCHEMA["properties"]["models"]["properties"]) == set(plan.MODELS)
    assert set(dataset["overrides"]["properties"]) == set(plan.MODELS)
    # a dataset's models may be a user's too: the plan checks each name before any job runs
    pattern = model_name_pattern(dataset["models"]["items"])
    assert all(re.fullmatch(pattern, name) for name in plan.MODELS)
    assert not re.fullmatch(pattern, "nade.r1")  # a training run's name, not a model's


def test_the_schema_knows_every_source_setting_and_no_other():
    keys = set(SCHEMA["$defs"]["dataset"]["properties"])
    by_sources = {key for entry in plan.SOURCES.values() for key in entry.defaults}
    assert keys == by_sources | set(plan.WORKFLOW_KEYS) | {"source"}
    assert set(SCHEMA["$defs"]["dataset"]["properties"]["source"]["enum"]) == set(plan.SOURCES)


def test_settings_keep_their_types_and_take_defaults():
    settings = plan.model_settings("nade", {"hidden": 300, "weight_decay": 1e-5, "lr": 1})
    assert settings["hidden"] == 300 and type(settings["hidden"]) is int
    assert settings["weight_decay"] == 1e-5 and type(settings["weight_decay"]) is float
    assert settings["lr"] == 1.0 and type(settings["lr"]) is float  # an int where a float goes
    assert settings["patience"] == plan.TRAINING_DEFAULTS["patience"]
    architecture, training = plan.split_settings("made", {"hidden": [8, 8], "lr": 0.5})
    assert architecture["hidden"] == [8, 8] and "lr" not in architecture
    assert training["lr"] == 0.5 and "hidden" not in training and "seed" in training


@pytest.mark.parametrize(
    "model, settings, message",
    [
        ("nade", {"hiden": 10}, "unknown setting 'hiden'"),
        ("nade", {"weight_decay": "1e-05"}, "weight_decay must be a number, got '1e-05'"),
        ("nade", {"hidden": "300"}, "hidden must be an integer"),
        ("nade", {"hidden": True}, "hidden must be an integer"),
        ("made", {"hidden": 500}, "hidden must be a list"),
        ("made", {"hidden": [500, "a"]}, r"hidden\[1\] must be an integer"),
        ("gmm", {"lr": 0.1}, "unknown setting 'lr'"),  # a mixture has no training settings
        ("pixelsnail", {}, "unknown model 'pixelsnail'"),
    ],
)
def test_a_wrong_setting_is_named(model, settings, message):
    with pytest.raises(plan.SettingsError, match=message):
        plan.model_settings(model, settings)


def test_source_specs_take_their_sources_defaults_and_refuse_other_keys():
    spec = plan.source_spec({"source": "atari", "frames": 90})
    assert spec["frames"] == 90 and spec["games"] == plan.SOURCES["atari"].defaults["games"]
    with pytest.raises(plan.SettingsError, match="source binarized_mnist: unknown setting 'split'"):
        plan.source_spec({"source": "binarized_mnist", "split": [0.8, 0.1, 0.1]})
    with pytest.raises(plan.SettingsError, match="unknown dataset source 'imagenet'"):
        plan.source_spec({"source": "imagenet"})


def test_job_settings_layer_model_defaults_config_and_dataset_overrides():
    config = {
        "seed": 3,
        "device": "cpu",
        "datasets": {
            "d": {"source": "atari", "models": ["nade"], "overrides": {"nade": {"hidden": 7}}}
        },
        "models": {"nade": {"hidden": 9, "lr": 0.01}},
    }
    settings = plan.job_settings(config, "d", "nade")
    assert settings["hidden"] == 7 and settings["lr"] == 0.01 and settings["seed"] == 3
    assert settings["device"] == "cpu" and settings["epochs"] == plan.TRAINING_DEFAULTS["epochs"]


def test_command_line_strings_are_typed_by_the_schema():
    # What Snakemake hands over for --config 'models={"nade": {"hidden": 300, ...}}'
    given = {
        "seed": "1",
        "models": {
            "nade": {"hidden": "300", "weight_decay": "1e-05", "tf32": "true", "lr": "0.001"},
            "made": {"hidden": ["8000", "8000"]},
        },
        "datasets": {"m": {"source": "mnist_idx", "binarize": "null", "levels": "16"}},
        "device": "cpu",
    }
    typed = coerce(given, SCHEMA)
    assert typed["seed"] == 1 and typed["device"] == "cpu"
    assert typed["models"]["nade"] == {
        "hidden": 300,
        "weight_decay": 1e-05,
        "tf32": True,
        "lr": 0.001,
    }
    assert typed["models"]["made"]["hidden"] == [8000, 8000]
    assert typed["datasets"]["m"]["binarize"] is None and typed["datasets"]["m"]["levels"] == 16
    # what cannot be read as the schema's type is left for validation to name
    assert coerce({"seed": "one"}, SCHEMA)["seed"] == "one"


def test_code_files_follow_imports_and_include_the_kernel_source():
    files = {Path(f).relative_to(PACKAGE_DIR).as_posix() for f in code_files("arbench.train")}
    assert {
        "__init__.py",
        "train.py",
        "core/plan.py",
        "training/checkpoints.py",
        "training/__init__.py",
        "data/format.py",
    } <= files
    # models are imported by name at run time: a job names its model's module itself
    assert not any(f.startswith("models/") and f != "models/__init__.py" for f in files)
    nade = {Path(f).relative_to(PACKAGE_DIR).as_posix() for f in code_files("arbench.models.nade")}
    assert {"models/nade_kernel.py", "models/nade_kernel.c", "models/__init__.py"} <= nade
    assert "models/made.py" not in nade


def test_outside_data_is_recorded_by_its_files_names_and_bytes_not_their_times(tmp_path):
    share = tmp_path / "share"
    (share / "sub").mkdir(parents=True)
    (share / "labels.gz").write_bytes(b"labels")
    (share / "sub" / "images.gz").write_bytes(b"images")
    again = tmp_path / "provisioned_again"
    shutil.copytree(share, again)  # the same bytes with fresh times
    for path in (again, *again.rglob("*")):
        os.utime(path, (1e9, 1e9))
    assert content_digest(str(share)) == content_digest(str(again))
    renamed = shutil.copytree(share, tmp_path / "renamed")
    (renamed / "sub" / "images.gz").rename(renamed / "images.gz")
    changed = shutil.copytree(share, tmp_path / "changed")
    (changed / "labels.gz").write_bytes(b"labelz")
    digests = {content_digest(str(p)) for p in (share, renamed, changed, share / "labels.gz")}
    assert len(digests) == 4


def test_a_stage_run_as_a_package_includes_its_main():
    files = {Path(f).relative_to(PACKAGE_DIR).as_posix() for f in code_files("arbench.report")}
    assert {"report/__init__.py", "report/__main__.py", "report/tables.py"} <= files


def test_a_module_without_python_source_is_refused():
    with pytest.raises(ValueError, match="no_such_module is not a module with Python source"):
        code_files("no_such_module")


def test_the_default_and_full_configs_settings_are_all_known():
    for name in ("config.yaml", "full.yaml"):
        config = yaml.safe_load((REPO / "config" / name).read_text())
        for dataset, entry in config["datasets"].items():
            plan.dataset_spec(config, dataset)
            for model in entry["models"]:
                plan.job_settings(config, dataset, model)


def test_replicates_are_training_runs_with_their_own_seeds():
    config = {
        "seed": 5,
        "replicates": 3,
        "device": "cpu",
        "datasets": {"d": {"source": "atari", "models": ["made", "gmm"]}},
        "models": {},
    }
    datasets, _ = plan.datasets_in_run(config)
    assert datasets["d"] == ["made", "made.r1", "made.r2", "gmm", "gmm.r1", "gmm.r2"]
    assert [plan.job_settings(config, "d", run)["seed"] for run in datasets["d"][:3]] == [5, 6, 7]
    assert plan.model_entry("gmm.r2").name == "gmm" and plan.replicate_of("made.r1") == ("made", 1)
    with pytest.raises(plan.SettingsError, match="not a model or a model.rN replicate"):
        plan.replicate_of("made.rx")


def test_replicates_may_be_given_per_model():
    config = {
        "seed": 0,
        "replicates": {"nade": 2, "made": 3},
        "device": "cpu",
        "datasets": {"d": {"source": "atari", "models": ["nade", "made", "gmm"]}},
        "models": {},
    }
    datasets, _ = plan.datasets_in_run(config)
    assert datasets["d"] == ["nade", "nade.r1", "made", "made.r1", "made.r2", "gmm"]


def test_the_schema_names_every_model_a_replicates_mapping_may_name():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    by_model = schema["properties"]["replicates"]["oneOf"][1]
    pattern = model_name_pattern(by_model["propertyNames"])
    assert all(re.fullmatch(pattern, name) for name in plan.MODELS)


def test_the_schema_states_the_download_defaults():
    stated = SCHEMA["properties"]["download"]["properties"]
    assert {key: value["default"] for key, value in stated.items()} == plan.DOWNLOAD_DEFAULTS
    with pytest.raises(plan.SettingsError, match="stall_seconds"):
        plan.download_settings({"stall_seconds": "soon"})


def test_the_error_check_draws_from_the_declared_pair_or_the_first_model_of_each_family():
    from arbench.core.plan import error_check_runs

    runs = ["mob", "gmm", "pca_gmm", "nade", "made", "made.r1", "pca_gmm.r1"]
    assert error_check_runs(runs) == ["made", "pca_gmm"]
    assert error_check_runs(["gmm", "gmm.r1", "nade", "made"], ("made", "pca_gmm")) == [
        "made",
        "gmm",
    ]
    assert error_check_runs(["gmm_diag", "mob"]) == ["gmm_diag"]  # no network: a mixture alone


def test_the_primary_pair_must_be_an_autoregressive_model_then_a_mixture():
    from arbench.core.plan import SettingsError, primary_pair

    assert primary_pair({}) == ("made", "pca_gmm")
    assert primary_pair({"comparison": {"primary": ["nade", "gmm"]}}) == ("nade", "gmm")
    with pytest.raises(SettingsError, match="must name an autoregressive model, then a mixture"):
        primary_pair({"comparison": {"primary": ["gmm", "nade"]}})


@pytest.mark.parametrize(
    "runs, drawn",
    [
        (["gmm", "made", "made.r1"], {"pairs", "training"}),
        (["mob", "gmm"], set()),  # one family, no network: no pair matrix, no curves
        (["nade", "made.r1"], {"training"}),
    ],
)
def test_a_dataset_declares_the_pair_matrix_and_curves_only_where_it_can_draw_them(runs, drawn):
    figures = plan.dataset_figures(runs)
    assert {"pairs", "training"} & set(figures) == drawn
    assert {"likelihoods", "check", "calibration", "completion"} <= set(figures)
