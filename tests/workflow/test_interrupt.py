"""Ctrl-C, as a terminal sends it (to the whole process group) and as a signal to Snakemake
alone: the README's command, run again without extra flags, goes on, and the training resumes
from its checkpoint instead of starting again."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tiny_workflow import TINY, run, snakemake_command

pytestmark = pytest.mark.slow

CONFIG = copy.deepcopy(TINY)
CONFIG["datasets"] = {"mnist": {**TINY["datasets"]["mnist"], "models": ["made"]}}
# a few seconds of training, an epoch a fraction of a second
CONFIG["models"]["made"] = {"hidden": [64], "epochs": 25, "batch_size": 20, "patience": 1000}
TRAIN_LOG = Path("results/logs/train/mnist/made.log")


def start(workdir: Path) -> subprocess.Popen:
    """The workflow in its own process group, as a terminal runs a command."""
    return subprocess.Popen(
        snakemake_command(workdir, CONFIG),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # as a terminal's command has it: a shell's background job (a test run with `&`)
        # inherits SIGINT ignored, and Snakemake would never hear the interrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_epoch(workdir: Path, epoch: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while f"epoch {epoch}:" not in read(workdir / TRAIN_LOG):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "training never reached the epoch"
        time.sleep(0.05)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_ctrl_c_in_a_terminal_then_the_same_command_resumes_the_training(tmp_path):
    process = start(tmp_path)
    wait_for_epoch(tmp_path, 3, process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: every process of the group
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0
    stopped = read(tmp_path / TRAIN_LOG)
    assert "stopped" in stopped and "interrupted. No output was left half-written" in stopped
    assert not (tmp_path / "results/models/mnist/made.pt").exists()
    assert (tmp_path / "results/checkpoints/mnist/made.ckpt").exists(), stopped + output[-3000:]

    again = run(snakemake_command(tmp_path, CONFIG), tmp_path)  # the README's command, as is
    assert "IncompleteFilesException" not in again.stdout + again.stderr
    log = read(tmp_path / TRAIN_LOG)
    assert "resuming from results/checkpoints/mnist/made.ckpt" in log
    assert "epoch 1:" not in log  # it went on from where it stopped
    assert (tmp_path / "results/report.md").exists()
    assert not (tmp_path / "results/checkpoints/mnist/made.ckpt").exists()  # removed at the end


def test_sigint_to_snakemake_alone_then_the_same_command_trains_nothing_again(tmp_path):
    process = start(tmp_path)
    wait_for_epoch(tmp_path, 2, process)
    process.send_signal(signal.SIGINT)  # Snakemake alone: it waits for the running job
    process.communicate(timeout=300)
    assert process.returncode != 0
    assert "epoch 25:" in read(tmp_path / TRAIN_LOG)  # the job ran to its end

    again = run(snakemake_command(tmp_path, CONFIG), tmp_path)
    assert "IncompleteFilesException" not in again.stdout + again.stderr
    log = read(tmp_path / TRAIN_LOG)
    assert "after its last epoch (25; epoch cap)" in log  # the model written again, untrained
    assert "epoch 1:" not in log
    assert (tmp_path / "results/report.md").exists()
