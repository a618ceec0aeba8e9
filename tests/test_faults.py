"""Bad inputs and hostile conditions: each ends in one clear message naming the file or setting,
and leaves nothing that looks complete."""

from __future__ import annotations

import json
import logging
import os
import pickle
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arbench import train as train_module
from arbench.core.contracts import SAMPLES
from arbench.core.files import atomic_write, remove_stale_parts, temporary_path
from arbench.data.anime import read_image_folder
from arbench.data.download import DownloadError, fetch
from arbench.data.format import SPLITS, save_dataset
from arbench.training import trainer
from arbench.training.trainer import load_checkpoint

MADE_SETTINGS = {
    "hidden": [64],
    "epochs": 200,
    "batch_size": 10,
    "lr": 0.01,
    "patience": 1000,
    "checkpoint_minutes": 0,
}


def stage(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, **options)


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_a_16_bit_grayscale_png_keeps_its_grey_levels(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "wide.png")  # Pillow makes it mode I;16
    assert Image.open(folder / "wide.png").mode.startswith("I")
    images, report = read_image_folder(folder, (8, 8))
    assert report["decoded"] == 1
    expected = np.round(ramp.astype(np.float64) * 255 / 65535)
    assert np.abs(images[0, 0].astype(np.float64) - expected).max() <= 1
    assert images[0].min() == 0 and 200 < images[0].max() < 255  # not saturated white


def test_a_write_that_runs_out_of_space_says_so_and_leaves_nothing(tiny_data, tmp_path):
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "models" / "m.pt"
    settings = json.dumps({"hidden": [256], "epochs": 2, "batch_size": 50, "checkpoint_minutes": 0})
    result = stage(
        "arbench.train",
        *("--data", str(tiny_data), "--model", "made", "--settings", settings),
        *("--out", str(out), "--checkpoint", str(tmp_path / "models" / "m.ckpt")),
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 1
    line = last_line(result)
    assert "could not write" in line and "m.ckpt" in line and "Nothing half-written" in line
    assert "inline_container" not in line
    assert not out.exists() and not leftovers(tmp_path)


def test_a_checkpoint_that_fills_the_disk_says_no_space_left(tiny_data, small_filesystem):
    out, checkpoint = small_filesystem / "m.pt", small_filesystem / "m.ckpt"
    settings = json.dumps(
        {"hidden": [512, 512], "epochs": 2, "batch_size": 50, "checkpoint_minutes": 0}
    )
    result = stage(
        "arbench.train",
        *("--data", str(tiny_data), "--model", "made", "--settings", settings),
        *("--out", str(out), "--checkpoint", str(checkpoint)),
    )
    assert result.returncode == 1
    line = last_line(result)
    assert f"could not write {checkpoint}: no space left on the device" in line, line
    assert "unexpected pos" not in result.stderr and "inline_container" not in result.stderr
    assert not out.exists() and not leftovers(small_filesystem)


def train_command(data: Path, settings: dict, out: Path, checkpoint: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "arbench.train",
        *("--data", str(data), "--model", "made", "--settings", json.dumps(settings)),
        *("--out", str(out), "--checkpoint", str(checkpoint)),
    ]


def test_sigterm_during_training_leaves_the_last_checkpoint_and_resumes(tiny_data, tmp_path):
    checkpoint, out = tmp_path / "m.ckpt", tmp_path / "m.pt"
    command = train_command(tiny_data, MADE_SETTINGS, out, checkpoint)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.01)
    # a checkpoint is saved every few tens of milliseconds: the signal often lands in a write
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in stderr.strip().splitlines()[-1]
    assert not out.exists() and not leftovers(tmp_path)
    progress = load_checkpoint(checkpoint)["progress"]
    assert 1 <= progress["epoch"] < MADE_SETTINGS["epochs"]
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} {trainer.position(progress)}" in resumed.stderr
    assert out.exists() and not checkpoint.exists()


def interrupted_after_one_epoch(data: Path, settings: dict, checkpoint: Path, monkeypatch):
    """Leave `checkpoint` as a run killed in its second epoch leaves it."""

    def stop(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "write_metrics", stop)
        with pytest.raises(KeyboardInterrupt):
            train_module.train(
                data, "made", settings, checkpoint.with_suffix(".pt"), None, checkpoint
            )
    assert load_checkpoint(checkpoint)["progress"]["epoch"] == 1


def test_a_checkpoint_of_other_settings_is_set_aside_not_resumed(
    tiny_data, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="arbench")
    checkpoint, settings = tmp_path / "m.ckpt", {**MADE_SETTINGS, "epochs": 3}
    interrupted_after_one_epoch(tiny_data, settings, checkpoint, monkeypatch)
    # only when to stop changed: the run resumes
    train_module.train(
        tiny_data, "made", {**settings, "epochs": 2}, tmp_path / "a.pt", None, checkpoint
    )
    assert f"resuming from {checkpoint} after epoch 1" in caplog.text
    caplog.clear()
    interrupted_after_one_epoch(tiny_data, settings, checkpoint, monkeypatch)
    train_module.train(
        tiny_data, "made", {**settings, "lr": 0.02}, tmp_path / "b.pt", None, checkpoint
    )
    assert "written with other settings" in caplog.text and "resuming" not in caplog.text


def test_a_temporary_file_of_a_killed_writer_is_removed_by_the_next_one(tmp_path):
    target = tmp_path / "result.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = target.parent / f".{target.name}.{dead.pid}.abcd1234.part"
    orphan.write_text("half")
    ours = temporary_path(target)
    ours.write_text("in progress")  # this process is alive: its file stays
    assert remove_stale_parts(target) == [orphan]
    atomic_write(target, lambda handle: handle.write(b"{}"))
    assert target.read_text() == "{}" and not orphan.exists() and ours.exists()


def test_result_files_are_readable_as_the_umask_allows(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.csv", lambda handle: handle.write(b"x"))
        os.umask(0o027)
        atomic_write(tmp_path / "b.csv", lambda handle: handle.write(b"x"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.csv").stat().st_mode) == 0o640


def test_a_download_that_trickles_is_cut_off_and_leaves_nothing(http_server, tmp_path):
    url = http_server.serve("/slow.bin", b"x" * 1000, trickle=0.2)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="stalled"):
        fetch(url, tmp_path / "slow.bin", retries=1, stall_window=1.0, min_rate=100)
    assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []


def test_the_download_policy_of_the_config_reaches_the_prepare_stage(http_server, tmp_path):
    url = http_server.serve("/faces.zip", b"x" * 1000, trickle=0.2)
    policy = json.dumps({"stall_seconds": 1, "min_rate": 100, "retries": 1})
    started = time.monotonic()
    result = stage(
        "arbench.prepare",
        *("--spec", json.dumps({"source": "anime_faces", "url": url})),
        *("--download", policy, "--resources", str(tmp_path / "resources")),
        *("--out", str(tmp_path / "anime.npz")),
    )
    assert time.monotonic() - started < 20  # not the default minute a stall window
    assert result.returncode == 1
    line = last_line(result)
    assert "stalled" in line and "place it at" in line
    assert not (tmp_path / "anime.npz").exists() and not leftovers(tmp_path)
    refused = stage(
        "arbench.prepare",
        *("--spec", '{"source": "atari"}', "--download", '{"retries": 0.5}'),
        *("--out", str(tmp_path / "atari.npz")),
    )
    assert "download: retries must be an integer, got 0.5" in last_line(refused)


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_foreign_checkpoint_is_refused_by_name_without_running_it(tiny_data, tmp_path):
    checkpoint = tmp_path / "m.ckpt"
    checkpoint.write_bytes(pickle.dumps({"progress": Payload()}))
    result = stage(
        "arbench.train",
        *("--data", str(tiny_data), "--model", "made", "--settings", '{"epochs": 1}'),
        *("--out", str(tmp_path / "m.pt"), "--checkpoint", str(checkpoint)),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    line = last_line(result)
    assert str(checkpoint) in line and "not a training checkpoint that arbench wrote" in line
    assert f"Delete {checkpoint}" in line
    # no advice to switch the protection off, and no warning from inside torch before it
    assert "weights_only" not in result.stderr and "Warning" not in result.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "m.pt").exists()


def test_a_mixture_that_fits_to_a_nan_likelihood_writes_no_model(tiny_data, tmp_path):
    result = stage(
        "arbench.train",
        *("--data", str(tiny_data), "--model", "mob"),
        *("--settings", '{"components": 40, "smoothing": 0}', "--out", str(tmp_path / "m.pt")),
    )
    assert result.returncode == 1
    assert "smoothing" in last_line(result) and "no model was written" in last_line(result)
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("stage_module", ["arbench.evaluate", "arbench.complete"])
def test_a_model_of_other_images_is_refused_by_name(tiny_data, tmp_path, stage_module):
    model = tmp_path / "m.pt"
    settings = '{"components": 3, "max_iter": 5}'
    trained = stage(
        *("arbench.train", "--data", str(tiny_data), "--model", "mob"),
        *("--settings", settings, "--out", str(model)),
    )
    assert trained.returncode == 0, trained.stderr
    wider = np.zeros((10, 1, 5, 5), dtype=np.uint8)  # 5x5 images, the model's are 4x4
    other = save_dataset(tmp_path / "other.npz", dict.fromkeys(SPLITS, wider), 2, {"source": "t"})
    out = tmp_path / "out" / "result.json"
    out.parent.mkdir()
    result = stage(stage_module, "--data", str(other), "--model", str(model), "--out", str(out))
    assert result.returncode == 1
    assert str(model) in last_line(result) and "trained on other data" in last_line(result)
    assert not list(out.parent.iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (("arbench.sample", "--model", "m.pt", "--n", "-5", "--out", "s.npz"), "positive integer"),
        (
            ("arbench.sample", "--model", "missing.pt", "--n", "5", "--out", "s.npz"),
            "does not exist",
        ),
        (
            (
                "arbench.train",
                "--data",
                "d.npz",
                "--model",
                "nade",
                "--out",
                "m.pt",
                "--settings",
                '{"hidden": 5',
            ),
            "not valid JSON",
        ),
        (
            (
                "arbench.prepare",
                "--spec",
                '{"source": "atari", "frames": "many"}',
                "--out",
                "a.npz",
            ),
            "frames must be an integer",
        ),
    ],
    ids=["negative-count", "missing-model", "bad-json", "wrong-type"],
)
def test_bad_command_lines_end_in_one_clear_line(tmp_path, args, message):
    result = stage(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in last_line(result)
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_small_floats_reach_the_optimizer_as_numbers(tiny_data, tmp_path):
    # json.dumps(1e-05) is "1e-05", which YAML 1.1 reads as a string; settings are JSON now
    result = stage(
        "arbench.train",
        *("--data", str(tiny_data), "--model", "nade", "--out", str(tmp_path / "m.pt")),
        *("--settings", json.dumps({"hidden": 8, "epochs": 1, "weight_decay": 1e-05})),
    )
    assert result.returncode == 0, result.stderr


def test_an_unexpected_library_error_ends_with_a_line_naming_the_job(tiny_data, tmp_path):
    # an error raised outside arbench's code, as a library would raise it
    code = (
        "import sys, torch\n"
        "from arbench import evaluate\n"
        "def broken(*a, **k): raise torch.OutOfMemoryError('CUDA out of memory')\n"
        "evaluate.load_dataset = broken\n"
        "sys.exit(evaluate.main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--data",
            str(tiny_data),
            "--model",
            "m.pt",
            "--out",
            "o.json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "Traceback" in result.stderr
    line = last_line(result)
    assert line.endswith("Please report it with this log.") and "evaluate m.pt on" in line


@pytest.mark.parametrize(
    "model, components",
    [("gmm_diag", 400), ("gmm", [2, 400]), ("pca_gmm", 400), ("mob", 400)],
)
def test_more_mixture_components_than_training_images_names_the_setting(
    tiny_data, tmp_path, model, components
):
    settings = json.dumps({"components": components})
    result = stage(
        "arbench.train",
        *("--data", str(tiny_data), "--model", model, "--settings", settings),
        *("--out", str(tmp_path / "m.pt")),
    )
    assert result.returncode == 1
    line = last_line(result)
    assert f"{model} has components {components}, more than the 300 training images" in line
    assert "set `components`" in line and "at most 300" in line
    assert "Traceback" not in result.stderr and not (tmp_path / "m.pt").exists()


STAGES = [
    "arbench.prepare",
    "arbench.train",
    "arbench.sample",
    "arbench.evaluate",
    "arbench.complete",
    "arbench.examine",
    "arbench.features",
    "arbench.quality",
    "arbench.metric_check",
    "arbench.report",
]


@pytest.mark.parametrize("module", STAGES)
def test_usage_errors_name_the_command_as_it_is_typed(module):
    result = stage(module, "--no-such-option")
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: python -m {module} ")
    assert f"python -m {module}: error:" in result.stderr and ".py:" not in result.stderr


# A run disturbed from outside: every file stays whole, and what is not right is redone. (A
# signal, a full disk and a killed writer are above; a job cancelled on the cluster and
# resubmitted is in tests/workflow/test_slurm.py; Ctrl-C to Snakemake in test_interrupt.py; a
# config edited while the workflow runs in tests/workflow/test_workflow.py.)


def test_an_input_changed_while_a_stage_runs_leaves_no_output_and_says_so(
    tiny_data, tmp_path, monkeypatch, caplog
):
    from arbench import sample as sample_module

    model = tmp_path / "m.pt"
    train_module.train(tiny_data, "mob", {"components": 2}, model)
    load = sample_module.load_model

    def loaded_then_remade(path):
        found = load(path)
        later = Path(path).stat().st_mtime_ns + 10**9
        os.utime(path, ns=(later, later))  # another command writes the model again meanwhile
        return found

    monkeypatch.setattr(sample_module, "load_model", loaded_then_remade)
    out = tmp_path / "s.npz"
    with caplog.at_level(logging.ERROR):
        status = sample_module.main(["--model", str(model), "--n", "4", "--out", str(out)])
    assert status == 1 and not out.exists()
    assert f"{model} changed while this job ran, so what it wrote was removed" in caplog.text


def test_two_commands_writing_the_same_output_leave_one_whole_file(tiny_data, tmp_path):
    model = tmp_path / "m.pt"
    train_module.train(tiny_data, "mob", {"components": 2}, model)
    out = tmp_path / "same.npz"
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "arbench.sample", "--model", str(model), "--n", "3000"]
            + ["--seed", str(seed), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for seed in (0, 1)
    ]
    assert all(writer.wait(timeout=300) == 0 for writer in writers)
    written = SAMPLES.read(out, levels=2, shape=(1, 4, 4))
    assert int(written["seed"]) in (0, 1) and len(written["samples"]) == 3000
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["m.pt", "same.npz", "tiny.json", "tiny.npz"]  # no temporary file behind
