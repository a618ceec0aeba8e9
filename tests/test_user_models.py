"""A user's model treated like arbench's own, stage by stage: trained (by its own fit, or by the
shared trainer with early stopping and checkpoints that resume bit for bit), its model file
naming its class, sampled, scored and completed; its code a code input of its jobs; and a model
file of a class that cannot be imported here refused, saying so."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import arbench
from arbench import train as train_module
from arbench.complete import complete
from arbench.core import code_inputs, plan, user_models
from arbench.data.format import load_dataset
from arbench.evaluate import evaluate
from arbench.sample import sample
from arbench.training import checkpoints, convergence, trainer
from arbench.training.checkpoints import UserClassMissing, load_model

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "independent_pixels" / "src"
FITTED = {"class": "independent_pixels.model:IndependentPixels", "family": "mixture"}
NETWORK = {
    "class": "independent_pixels.network:IndependentPixelsNet",
    "family": "autoregressive",
    "epochs": 40,
    "patience": 2,
    "batch_size": 50,
    "init_scale": 0.5,
    "device": "cpu",
    "checkpoint_minutes": 0.0,
}


@pytest.fixture(autouse=True)
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setattr(plan, "_USER_MODELS", {})
    monkeypatch.delenv(user_models.ENVIRONMENT, raising=False)


def test_a_users_closed_form_model_is_trained_sampled_scored_and_completed(
    tiny_data, tmp_path, monkeypatch
):
    out = tmp_path / "pixels.pt"
    summary = train_module.train(tiny_data, "pixels", FITTED, out, tmp_path / "curve.csv")
    record = summary["training"]
    assert record["ended_by"] == convergence.CONVERGED and not convergence.unfinished(record)
    saved = checkpoints.load(out)
    assert saved["class"] == FITTED["class"] and saved["family"] == "mixture"
    assert saved["config"] == {"smoothing": 1.0, "seed": 0}  # its settings, not its identity
    metrics = evaluate(tiny_data, out, tmp_path / "likelihood.json")
    assert metrics["model"] == "pixels" and metrics["exact"] and metrics["nll_nats"] > 0
    completed = complete(tiny_data, out, tmp_path / "completion.json", images=3, completions=2)
    assert completed["likelihood"] == "exact"
    drawn = np.load(sample(out, 20, 0, tmp_path / "samples.npz"))["samples"]
    assert drawn.shape == (20, 1, 4, 4) and drawn.max() <= 1
    monkeypatch.setattr(plan, "_USER_MODELS", {})  # a process that knows nothing of the run
    model = arbench.load(out)  # the public API: the file names its class
    assert model.name == "pixels" and np.array_equal(
        model.sample(5, seed=3), model.sample(5, seed=3)
    )
    per_image = np.load(tmp_path / "likelihood.npz")["nll"]
    assert np.allclose(-model.log_prob(load_dataset(tiny_data).test), per_image)


def interrupted_after_one_epoch(data, settings, checkpoint: Path, monkeypatch) -> None:
    def stop(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "write_metrics", stop)
        with pytest.raises(KeyboardInterrupt):
            train_module.train(
                data, "net", settings, checkpoint.with_suffix(".pt"), None, checkpoint
            )


def test_a_users_network_trains_to_early_stopping_and_resumes_bit_for_bit(
    tiny_data, tmp_path, monkeypatch
):
    whole = train_module.train(tiny_data, "net", NETWORK, tmp_path / "whole.pt")
    assert whole["training"]["ended_by"] == convergence.EARLY_STOPPING
    assert whole["epochs"] < NETWORK["epochs"]
    checkpoint = tmp_path / "resumed.ckpt"
    interrupted_after_one_epoch(tiny_data, NETWORK, checkpoint, monkeypatch)
    resumed = train_module.train(
        tiny_data, "net", NETWORK, tmp_path / "resumed.pt", None, checkpoint
    )
    assert resumed["training"]["resumed"] == 1 and resumed["epochs"] == whole["epochs"]
    first, second = (checkpoints.load(tmp_path / f"{n}.pt")["state"] for n in ("whole", "resumed"))
    assert set(first) == {"logits"} and torch.equal(first["logits"], second["logits"])


def test_a_model_file_of_a_class_not_importable_here_is_refused_saying_so(tiny_data, tmp_path):
    out = tmp_path / "pixels.pt"
    train_module.train(tiny_data, "pixels", FITTED, out)
    saved = checkpoints.load(out)
    saved["class"] = "package_not_installed.model:IndependentPixels"
    torch.save(saved, out)
    with pytest.raises(UserClassMissing) as refused:
        load_model(out)
    message = str(refused.value)
    assert "of the class package_not_installed.model:IndependentPixels" in message
    assert "No module named 'package_not_installed'" in message
    assert "Install the package that defines package_not_installed.model:IndependentPixels" in (
        message
    )


@pytest.mark.parametrize(
    "state, where",
    [
        ({"table": np.zeros(3)}, "a numpy.ndarray at state['table']"),
        (
            {"nested": {"fn": print}},
            "a builtins.builtin_function_or_method at state['nested']['fn']",
        ),
        ({"items": [torch.zeros(1), object()]}, "a builtins.object at state['items'][1]"),
    ],
)
def test_a_state_that_would_not_load_without_running_code_is_refused_when_saved(
    tiny_data, tmp_path, monkeypatch, state, where
):
    from independent_pixels.model import IndependentPixels

    monkeypatch.setattr(IndependentPixels, "state_dict", lambda self: state)
    with pytest.raises(ValueError, match=re.escape(f"state_dict (model pixels) holds {where}")):
        train_module.train(tiny_data, "pixels", FITTED, tmp_path / "pixels.pt")
    assert not (tmp_path / "pixels.pt").exists()


def imported_from(folder: Path, monkeypatch) -> None:
    """The example package imported from `folder` from now on, nothing of another copy cached."""
    monkeypatch.syspath_prepend(str(folder))
    for name in [m for m in sys.modules if m.split(".")[0] == "independent_pixels"]:
        monkeypatch.delitem(sys.modules, name)
    code_inputs._source_file.cache_clear()
    code_inputs._direct.cache_clear()


MODEL_JOB = ("arbench.train", "independent_pixels.model", plan.INTERFACE)
NETWORK_JOB = ("arbench.train", "independent_pixels.network", plan.INTERFACE)


def test_a_users_code_is_a_code_input_of_its_jobs_through_its_own_imports(tmp_path, monkeypatch):
    copy = tmp_path / "one" / "src"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    imported_from(copy, monkeypatch)
    files = code_inputs.code_files(*MODEL_JOB)
    assert {Path(f).relative_to(copy).as_posix() for f in files if f.startswith(str(copy))} == {
        "independent_pixels/__init__.py",
        "independent_pixels/model.py",
        "independent_pixels/pixels.py",  # imported by model.py
    }
    assert str(code_inputs.PACKAGE_DIR / "models" / "interface.py") in files
    assert not any("numpy" in f or "/torch/" in f for f in files)  # other packages: never
    before = code_inputs.code_digest.__wrapped__(*MODEL_JOB)
    network = code_inputs.code_digest.__wrapped__(*NETWORK_JOB)
    # the same code installed elsewhere: the same digest (a run moved with its code plans nothing)
    elsewhere = tmp_path / "two" / "src"
    shutil.copytree(copy, elsewhere)
    imported_from(elsewhere, monkeypatch)
    assert code_inputs.code_digest.__wrapped__(*MODEL_JOB) == before
    edited = elsewhere / "independent_pixels" / "model.py"
    edited.write_text(edited.read_text() + "# edited\n")
    assert code_inputs.code_digest.__wrapped__(*MODEL_JOB) != before
    assert code_inputs.code_digest.__wrapped__(*NETWORK_JOB) == network  # not its code
