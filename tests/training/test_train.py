import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from arbench.core.cli import Terminated
from arbench.data.format import save_dataset
from arbench.models.made import MADE
from arbench.models.nade import NADE
from arbench.models.pixelcnn import PixelCNN
from arbench.train import train
from arbench.training import checkpoints, convergence
from arbench.training.checkpoints import load_model
from arbench.training.trainer import (
    TrainingDiverged,
    denormal_count,
    ended_by,
    improves,
    load_checkpoint,
    new_progress,
    position,
)

CONFIGS = {
    "nade": {
        "hidden": 8,
        "epochs": 4,
        "batch_size": 32,
        "lr": 0.01,
        "order_agnostic": True,
        "test_orderings": 2,
        "checkpoint_minutes": 0,  # a checkpoint after every epoch: what a kill leaves is known
    },
    "made": {
        "hidden": [16],
        "masks": 3,
        "epochs": 4,
        "batch_size": 32,
        "lr": 0.01,
        "lr_decay": 0.9,
        "averaging": 0.9,  # the parameter average is resumed too
        "checkpoint_minutes": 0,
    },
    "pixelcnn": {
        "channels": 4,
        "head": 4,
        "layers": 2,
        "epochs": 4,
        "batch_size": 32,
        "lr": 0.01,
        "averaging": 0.9,
        "checkpoint_minutes": 0,
    },
}


def read_column(path, column):
    with open(path, newline="") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def final_state(path):
    return checkpoints.load(path)["state"]


@pytest.mark.parametrize("name, cls", [("nade", NADE), ("made", MADE), ("pixelcnn", PixelCNN)])
def test_interrupted_run_resumes_to_the_same_parameters(
    tiny_data, tmp_path, name, cls, monkeypatch
):
    config = CONFIGS[name]
    train(tiny_data, name, config, tmp_path / "straight.pt", tmp_path / "straight.csv")

    calls = {"n": 0}
    original = cls.nll

    def dies_in_epoch_three(self, x):
        calls["n"] += 1
        if calls["n"] == 2 * 10 + 5:  # 10 batches an epoch: midway through epoch 3
            raise KeyboardInterrupt
        return original(self, x)

    monkeypatch.setattr(cls, "nll", dies_in_epoch_three)
    checkpoint = tmp_path / "resumed.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(
            tiny_data, name, config, tmp_path / "resumed.pt", tmp_path / "resumed.csv", checkpoint
        )
    assert load_checkpoint(checkpoint)["progress"]["epoch"] == 2
    assert not (tmp_path / "resumed.pt").exists()
    monkeypatch.setattr(cls, "nll", original)
    train(tiny_data, name, config, tmp_path / "resumed.pt", tmp_path / "resumed.csv", checkpoint)

    straight, resumed = final_state(tmp_path / "straight.pt"), final_state(tmp_path / "resumed.pt")
    assert straight.keys() == resumed.keys()
    for key in straight:
        if isinstance(straight[key], torch.Tensor):
            torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)
    assert read_column(tmp_path / "resumed.csv", "valid_nll") == read_column(
        tmp_path / "straight.csv", "valid_nll"
    )
    assert not checkpoint.exists()  # removed once the model is written


@pytest.mark.parametrize(
    "number, stopped_as",
    [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_mid_epoch_checkpoints_there_and_the_run_resumes_bit_for_bit(
    tiny_data, tmp_path, monkeypatch, number, stopped_as
):
    config = {**CONFIGS["made"], "checkpoint_minutes": 60.0}  # no checkpoint but the signal's
    train(tiny_data, "made", config, tmp_path / "straight.pt", tmp_path / "straight.csv")

    calls = {"n": 0}
    original = MADE.nll

    def signalled_in_epoch_two(self, x):
        calls["n"] += 1
        if calls["n"] == 10 + 4:  # 10 batches an epoch: the signal comes during step 4
            os.kill(os.getpid(), number)
        return original(self, x)

    monkeypatch.setattr(MADE, "nll", signalled_in_epoch_two)
    checkpoint = tmp_path / "resumed.ckpt"
    with pytest.raises(stopped_as):
        train(
            tiny_data, "made", config, tmp_path / "resumed.pt", tmp_path / "resumed.csv", checkpoint
        )
    progress = load_checkpoint(checkpoint)["progress"]
    assert progress["epoch"] == 1 and progress["partial"]["step"] == 4  # steps 0-3 done
    assert position(progress) == "in epoch 2 at step 5"
    monkeypatch.setattr(MADE, "nll", original)
    summary = train(
        tiny_data, "made", config, tmp_path / "resumed.pt", tmp_path / "resumed.csv", checkpoint
    )

    straight, resumed = final_state(tmp_path / "straight.pt"), final_state(tmp_path / "resumed.pt")
    for key in straight:
        if isinstance(straight[key], torch.Tensor):
            torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)
    assert read_column(tmp_path / "resumed.csv", "train_nll") == read_column(
        tmp_path / "straight.csv", "train_nll"
    )
    assert summary["training"]["resumed"] == 1


def test_a_signal_while_an_epochs_curve_is_written_still_leaves_a_checkpoint(
    tiny_data, tmp_path, monkeypatch
):
    """The signal comes after the epoch's checkpoint decision: it is seen at the next step."""
    from arbench.training import trainer as train_module

    config = {**CONFIGS["made"], "checkpoint_minutes": 60.0}
    original = train_module.write_metrics

    def signalled_while_writing(path, rows):
        original(path, rows)
        if len(rows) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(train_module, "write_metrics", signalled_while_writing)
    checkpoint = tmp_path / "m.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_data, "made", config, tmp_path / "m.pt", tmp_path / "m.csv", checkpoint)
    assert position(load_checkpoint(checkpoint)["progress"]) == "in epoch 3 at step 1"


def test_checkpoints_are_written_on_their_interval_not_every_epoch(
    tiny_data, tmp_path, monkeypatch
):
    from arbench.training import checkpoints

    saved = []
    original = checkpoints.save
    monkeypatch.setattr(
        checkpoints, "save", lambda obj, path: saved.append(path) or original(obj, path)
    )
    config = {**CONFIGS["made"], "epochs": 4}
    train(tiny_data, "made", {**config, "checkpoint_minutes": 60.0}, tmp_path / "a.pt")
    assert [p.name for p in saved] == ["a.pt"]  # only the model: no epoch took an hour
    saved.clear()
    train(tiny_data, "made", {**config, "checkpoint_minutes": 0}, tmp_path / "b.pt")
    assert [p.name for p in saved] == ["b.ckpt"] * 4 + ["b.pt"]


def test_a_kept_final_checkpoint_writes_the_model_again_without_training(
    tiny_data, tmp_path, caplog
):
    import logging

    caplog.set_level(logging.INFO, logger="arbench")
    config, checkpoint = CONFIGS["made"], tmp_path / "m.ckpt"
    first = train(
        tiny_data, "made", config, tmp_path / "m.pt", tmp_path / "m.csv", checkpoint, True
    )
    assert checkpoint.exists()  # kept: the workflow removes it once the run succeeded
    assert load_checkpoint(checkpoint)["progress"]["ended_by"] == convergence.EPOCH_CAP
    first_state = final_state(tmp_path / "m.pt")
    curve = (tmp_path / "m.csv").read_text()
    (tmp_path / "m.pt").unlink()
    (tmp_path / "m.csv").unlink()  # Snakemake removes both outputs of an interrupted job
    caplog.clear()
    again = train(tiny_data, "made", config, tmp_path / "m.pt", tmp_path / "m.csv", checkpoint)
    assert f"resuming from {checkpoint} after its last epoch (4; epoch cap)" in caplog.text
    assert "epoch 1:" not in caplog.text  # nothing trained again
    assert again["training"] == first["training"]
    assert (tmp_path / "m.csv").read_text() == curve
    for key, value in final_state(tmp_path / "m.pt").items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, first_state[key])
    assert not checkpoint.exists()


def validate(state: dict, epoch: int, valid_nll: float) -> None:
    """Record one validated epoch in `state` as the trainer does."""
    state["metrics"].append({"epoch": epoch, "valid_nll": valid_nll})
    state.update(epoch=epoch, validated_epoch=epoch)
    if improves(valid_nll, state["best_nll"]):
        state["improved_epoch"] = epoch
    state["best_nll"] = min(state["best_nll"], valid_nll)


def test_with_patience_one_the_first_validation_counts_as_progress():
    """The first validation lowers an infinite best: it must not end training by itself."""
    state, training = new_progress(), {"patience": 1, "epochs": 10}
    for epoch, valid_nll in enumerate([90.0, 89.99], start=1):
        validate(state, epoch, valid_nll)
        stopped = ended_by(state, training, None)
        assert stopped == (convergence.EARLY_STOPPING if epoch == 2 else None), epoch


def test_early_stopping_waits_until_the_curve_has_flattened():
    """A run whose last epoch gained less than the tolerance, but whose best valid NLL still fell
    fast over the last epochs (a decayed learning rate), is not ended by early stopping until
    that fall is within the tolerance too: early stopping ends finished runs only."""
    state, training = new_progress(), {"patience": 1, "epochs": 100}
    curve = [100.0, 90.0, 85.0, 84.99, 84.98, 84.97, 84.96, 84.95, 84.94]
    stops = []
    for epoch, valid_nll in enumerate(curve, start=1):
        validate(state, epoch, valid_nll)
        stops.append(ended_by(state, training, None))
    # patience ran out at epoch 4; the five-epoch fall reached the tolerance (0.042) at epoch 8
    assert stops[:7] == [None] * 7 and stops[7] == convergence.EARLY_STOPPING
    record = convergence.network_record(stops[7], curve[:8])
    assert not convergence.unfinished(record)


def test_how_each_training_ended_is_recorded(tiny_data, tmp_path):
    base = {"hidden": [32], "batch_size": 32, "lr": 0.05}
    stopped = train(tiny_data, "made", {**base, "epochs": 200, "patience": 2}, tmp_path / "a.pt")
    record = stopped["training"]
    assert record["ended_by"] == convergence.EARLY_STOPPING
    assert record["epochs"] >= stopped["best_epoch"] + 2  # patience, then a flat curve
    assert record["improvement_per_epoch"] >= 0
    assert not convergence.unfinished(record)

    capped = train(tiny_data, "made", {**base, "lr": 0.001, "epochs": 3}, tmp_path / "b.pt")
    record = capped["training"]
    assert record["ended_by"] == convergence.EPOCH_CAP and record["epochs"] == 3
    # still learning fast
    assert record["improvement_per_epoch"] > convergence.tolerance(record["best_valid_nll"])
    assert convergence.unfinished(record)

    timed = train(tiny_data, "made", {**base, "epochs": 50, "max_minutes": 1e-6}, tmp_path / "c.pt")
    assert timed["training"]["ended_by"] == convergence.TIME_CAP
    assert timed["training"]["epochs"] == 1  # the cap is checked between epochs
    assert timed["training"]["improvement_per_epoch"] is None
    assert convergence.unfinished(timed["training"])  # a rate nobody measured

    # the epoch the time cap ends is validated even off the schedule: its model is the one kept
    sparse = {**base, "epochs": 50, "max_minutes": 1e-6, "validate_every": 5, "patience": 5}
    timed = train(tiny_data, "made", sparse, tmp_path / "d.pt", tmp_path / "d.csv")
    assert timed["training"]["ended_by"] == convergence.TIME_CAP
    assert [float(v) for v in read_column(tmp_path / "d.csv", "valid_nll")] == [
        timed["best_valid_nll"]
    ]


@pytest.mark.parametrize("name", ["gmm", "gmm_diag", "pca_gmm", "mob"])
def test_how_each_em_fit_ended_is_recorded(tiny_data, tmp_path, name):
    settings = {"components": 3, "max_iter": 1}
    if name == "mob":
        settings["tol"] = 1e-12
    capped = train(tiny_data, name, settings, tmp_path / "a.pt")["training"]
    assert capped["ended_by"] == convergence.ITERATION_CAP and capped["epochs"] == 1
    converged = train(tiny_data, name, {"components": 3, "max_iter": 500}, tmp_path / "b.pt")
    assert converged["training"]["ended_by"] == convergence.CONVERGED
    assert not convergence.unfinished(converged["training"])


def test_sigkilled_training_resumes_from_its_checkpoint(tiny_data, tmp_path):
    config = (
        '{"hidden": [64], "epochs": 6, "batch_size": 10, "lr": 0.01, "masks": 2, '
        '"checkpoint_minutes": 0}'
    )
    command = [
        sys.executable,
        "-m",
        "arbench.train",
        "--data",
        str(tiny_data),
        "--model",
        "made",
        "--settings",
        config,
    ]
    subprocess.run(
        [*command, "--out", str(tmp_path / "straight.pt")], check=True, capture_output=True
    )

    checkpoint = tmp_path / "killed.ckpt"
    run = [*command, "--out", str(tmp_path / "killed.pt"), "--checkpoint", str(checkpoint)]
    process = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (tmp_path / "killed.pt").exists()
    killed_at = load_checkpoint(checkpoint)["progress"]["epoch"]
    assert 1 <= killed_at < 6

    resumed = subprocess.run(run, capture_output=True, text=True, check=True)
    assert f"resuming from {checkpoint} after epoch {killed_at}" in resumed.stderr
    straight, again = final_state(tmp_path / "straight.pt"), final_state(tmp_path / "killed.pt")
    for key, value in straight.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(again[key], value, rtol=0, atol=0)


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_last_good_checkpoint(
    tiny_data, tmp_path, monkeypatch
):
    original = NADE.nll
    calls = {"n": 0}

    def goes_nan(self, x):
        calls["n"] += 1
        loss = original(self, x)
        return loss * float("nan") if calls["n"] == 10 + 3 else loss

    monkeypatch.setattr(NADE, "nll", goes_nan)
    checkpoint = tmp_path / "m.ckpt"
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, step 3/10.*epoch 1"):
        train(
            tiny_data,
            "nade",
            {**CONFIGS["nade"], "kernel": "reference"},
            tmp_path / "m.pt",
            checkpoint=checkpoint,
        )
    assert load_checkpoint(checkpoint)["progress"]["epoch"] == 1
    assert not (tmp_path / "m.pt").exists()


def test_early_stopping_keeps_the_best_epoch(tiny_data, tmp_path):
    summary = train(
        tiny_data,
        "made",
        {"hidden": [32], "epochs": 40, "patience": 3, "lr": 0.05},
        tmp_path / "m.pt",
        tmp_path / "m.csv",
    )
    valid = [float(v) for v in read_column(tmp_path / "m.csv", "valid_nll")]
    assert summary["best_epoch"] == 1 + int(np.argmin(valid))
    # patience, then as long as the curve still fell faster than the tolerance
    stopped = summary["training"]["ended_by"] == convergence.EARLY_STOPPING
    assert len(valid) >= summary["best_epoch"] + 3 if stopped else len(valid) == 40
    assert not (stopped and convergence.unfinished(summary["training"]))
    model = load_model(tmp_path / "m.pt")
    from arbench.data import load_dataset

    valid_x = load_dataset(tiny_data).valid
    assert float(-model.log_prob(valid_x).mean()) == pytest.approx(min(valid), rel=1e-5)


@pytest.mark.parametrize("name", ["gmm", "mob"])
def test_mixtures_train_through_the_same_entry_point(tiny_data, tmp_path, name):
    summary = train(tiny_data, name, {"components": 3}, tmp_path / "m.pt", tmp_path / "m.csv")
    model = load_model(tmp_path / "m.pt")
    assert model.name == name and summary["parameters"] > 0
    assert model.sample(5, seed=0).shape == (5, 1, 4, 4)


def test_training_process_keeps_decayed_weights_out_of_slow_denormal_floats(tmp_path):
    # Pixel 0 is always off: the weights it feeds get no gradient and weight decay alone moves
    # them, into denormal floats unless the training process flushes those to zero.
    rng = np.random.default_rng(0)
    prototypes = rng.random((4, 1, 4, 4)) < 0.5
    picks, flips = rng.integers(0, 4, 360), rng.random((360, 1, 4, 4)) < 0.1
    images = (prototypes[picks] ^ flips).astype(np.uint8)
    images[:, 0, 0, 0] = 0
    splits = {"train": images[:300], "valid": images[300:], "test": images[300:]}
    data = save_dataset(tmp_path / "dead_pixel.npz", splits, 2, {"source": "test"})
    config = (
        '{"hidden": [16], "epochs": 60, "batch_size": 10, "lr": 0.01, "weight_decay": 0.01,'
        ' "patience": 1000, "threads": 1}'
    )
    arguments = f"['--data', '{data}', '--model', 'made', '--settings', '{config}', '--out', "
    runs = {
        "process": f"from arbench.train import main; main({arguments}'{tmp_path / 'a.pt'}'])",
        # the same training called as a function in a process that never asked for flushing
        "function": "import json; from arbench.train import train; "
        f"train('{data}', 'made', json.loads('{config}'), '{tmp_path / 'b.pt'}')",
    }
    for code in runs.values():
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    weights = {
        name: [v for v in final_state(tmp_path / name).values() if torch.is_tensor(v)]
        for name in ("a.pt", "b.pt")
    }
    assert denormal_count(weights["b.pt"]) > 0  # the setting really produces them
    assert denormal_count(weights["a.pt"]) == 0


def test_averaging_validates_and_saves_the_parameter_average(tiny_data, tmp_path):
    from arbench.data import load_dataset

    config = {"hidden": [16], "epochs": 3, "batch_size": 32, "lr": 0.05, "patience": 10}
    train(tiny_data, "made", config, tmp_path / "last.pt", tmp_path / "last.csv")
    train(tiny_data, "made", config | {"averaging": 0.8}, tmp_path / "avg.pt", tmp_path / "avg.csv")
    averaged = [float(v) for v in read_column(tmp_path / "avg.csv", "valid_nll")]
    assert averaged != [float(v) for v in read_column(tmp_path / "last.csv", "valid_nll")]
    assert read_column(tmp_path / "avg.csv", "train_nll") == read_column(
        tmp_path / "last.csv", "train_nll"
    )  # the average is only looked at: training follows the same path
    valid_x = load_dataset(tiny_data).valid
    saved = float(-load_model(tmp_path / "avg.pt").log_prob(valid_x).mean())
    assert saved == pytest.approx(min(averaged), rel=1e-5)


def test_averaging_outside_zero_to_one_is_refused(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="averaging"):
        train(tiny_data, "made", {"epochs": 1, "averaging": 1.5}, tmp_path / "m.pt")


def test_validating_every_few_epochs_keeps_early_stopping_to_the_validated_epochs(
    tiny_data, tmp_path
):
    settings = {"hidden": [32], "batch_size": 32, "lr": 0.05, "epochs": 40, "patience": 6}
    summary = train(
        tiny_data, "made", {**settings, "validate_every": 3}, tmp_path / "m.pt", tmp_path / "m.csv"
    )
    epochs = [int(e) for e in read_column(tmp_path / "m.csv", "epoch")]
    valid = read_column(tmp_path / "m.csv", "valid_nll")
    assert [e for e, v in zip(epochs, valid, strict=True) if v] == [
        e for e in epochs if e % 3 == 0 or e == 40
    ]
    record = summary["training"]
    assert summary["best_epoch"] % 3 == 0  # the kept parameters are a validated epoch's
    if record["ended_by"] == convergence.EARLY_STOPPING:
        assert epochs[-1] % 3 == 0  # judged at a validation
    assert record["improvement_per_epoch"] is not None
    with pytest.raises(ValueError, match="patience 2 is shorter than validate_every 3"):
        train(
            tiny_data, "made", {**settings, "validate_every": 3, "patience": 2}, tmp_path / "x.pt"
        )


def test_how_training_ended_reaches_the_evaluate_stages_output(tiny_data, tmp_path):
    settings = '{"hidden": [16], "epochs": 2, "batch_size": 32, "lr": 0.001}'
    stage = [sys.executable, "-m"]
    subprocess.run(
        [*stage, "arbench.train", "--data", str(tiny_data), "--model", "made"]
        + ["--settings", settings, "--out", str(tmp_path / "m.pt")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*stage, "arbench.evaluate", "--data", str(tiny_data), "--model", str(tmp_path / "m.pt")]
        + ["--out", str(tmp_path / "m.json")],
        check=True,
        capture_output=True,
    )
    import json

    record = json.loads((tmp_path / "m.json").read_text())["training"]
    assert record["ended_by"] == convergence.EPOCH_CAP and record["epochs"] == 2
    assert convergence.unfinished(record)  # two epochs of a slow learning rate: still falling


def test_a_resumed_training_counts_the_time_of_every_process(tiny_data, tmp_path, monkeypatch):
    """A training stopped and resumed reports the seconds of both runs, not of the last only:
    the first run's clock here jumps 100 s at every reading."""
    real_clock = time.monotonic
    readings = iter(range(10**6))
    monkeypatch.setattr(time, "monotonic", lambda: real_clock() + 100 * next(readings))
    calls = {"n": 0}
    original = MADE.nll

    def dies_in_epoch_three(self, x):
        calls["n"] += 1
        if calls["n"] == 2 * 10 + 5:
            raise KeyboardInterrupt
        return original(self, x)

    monkeypatch.setattr(MADE, "nll", dies_in_epoch_three)
    checkpoint, out = tmp_path / "made.ckpt", tmp_path / "made.pt"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_data, "made", CONFIGS["made"], out, tmp_path / "made.csv", checkpoint)
    before = load_checkpoint(checkpoint)["progress"]["seconds"]
    assert before >= 100
    monkeypatch.setattr(time, "monotonic", real_clock)
    monkeypatch.setattr(MADE, "nll", original)
    train(tiny_data, "made", CONFIGS["made"], out, tmp_path / "made.csv", checkpoint)
    assert checkpoints.summary(out)["seconds"] > before
