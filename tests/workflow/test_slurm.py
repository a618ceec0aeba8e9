"""The tiny workflow submitted through `profiles/slurm` to a real single-node SLURM cluster,
and a training job cancelled by SLURM that resumes from its checkpoint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from slurm_cluster import PARTITION, SlurmCluster, unavailable_reason
from tiny_workflow import REPO, TINY, snakemake

from arbench.core.plan import MODELS
from arbench.training import checkpoints
from arbench.training.trainer import load_checkpoint

pytestmark = pytest.mark.slow

NEURAL = {name for name, entry in MODELS.items() if entry.neural}
DATASET_RULES = ("prepare", "features", "metric_check", "error_check")
MODEL_RULES = ("train", "sample", "examine", "quality")
GPU_RULES = {"train", "sample", "examine"}  # those that run a neural model
# A part of the tiny run, settings unchanged (so its results must equal the local run's): every
# rule, a network and a mixture; each of its jobs is a separate sbatch submission.
SUBMITTED = {
    **TINY,
    "datasets": {"mnist": {**TINY["datasets"]["mnist"], "models": ["gmm_diag", "made"]}},
}


@pytest.fixture(scope="module")
def cluster():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    # Not under pytest's own temporary folder: munged wants every folder above its socket
    # open to all users, and pytest's are private.
    root = Path(tempfile.mkdtemp(prefix="arbench-slurm-"))
    started = SlurmCluster(root)
    try:
        started.start()
        yield started
    finally:
        started.stop()
        shutil.rmtree(root, ignore_errors=True)


def cluster_profile(folder: Path, threads: int) -> Path:
    """profiles/slurm as a user adapts it: the cluster's partition, CPUs matching the config."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = PARTITION
    profile["default-resources"]["cpus_per_task"] = threads
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def submissions(log: str) -> dict[str, str]:
    """SLURM job id -> the sbatch command line that submitted it, from a --verbose log."""
    calls = re.findall(r"sbatch call: (sbatch .*)", log)
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(calls) == len(ids), "every sbatch call should report one job id"
    return dict(zip(ids, calls, strict=True))


def test_tiny_workflow_runs_through_the_slurm_profile_like_a_local_run(
    cluster, finished, tmp_path, record_property
):
    local, submitted = finished, tmp_path / "slurm"
    submitted.mkdir()

    profile = cluster_profile(tmp_path / "profile", TINY["resources"]["threads"])
    run = snakemake(
        submitted,
        SUBMITTED,
        "--profile",
        str(profile),
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--verbose",
        env=cluster.env,
    )
    jobs = submissions(run.stdout + run.stderr)
    record_property("slurm_job_ids", ",".join(jobs))

    expected = 1 + len(DATASET_RULES) * len(SUBMITTED["datasets"])  # and the report
    for entry in SUBMITTED["datasets"].values():
        expected += len(MODEL_RULES) * len(entry["models"])
    assert len(jobs) == expected, "every job of the plan is submitted with sbatch"
    for job, call in jobs.items():
        assert cluster.job_state(int(job)) == "COMPLETED", call
        assert f"-p {PARTITION}" in call, call
        # the plugin names each job in its comment: rule_<rule>_wildcards_<dataset>_<model>
        comment = re.search(r"--comment '?rule_(\w+?)(?:_wildcards_(\w+))?[' ]", call)
        rule, wildcards = comment.group(1), (comment.group(2) or "").split("_")
        wants_gpu = rule in GPU_RULES and wildcards[-1] in NEURAL
        assert ("--gpus=1" in call) == wants_gpu, call

    for dataset, entry in SUBMITTED["datasets"].items():
        for model in entry["models"]:
            ours = json.loads((submitted / f"results/metrics/{dataset}/{model}.json").read_text())
            theirs = json.loads((local / f"results/metrics/{dataset}/{model}.json").read_text())
            assert ours["nll_nats"] == pytest.approx(theirs["nll_nats"], rel=1e-6)
            for kind in ("samples", "metrics"):
                with (
                    np.load(submitted / f"results/{kind}/{dataset}/{model}.npz") as a,
                    np.load(local / f"results/{kind}/{dataset}/{model}.npz") as b,
                ):
                    for key in set(b.files) - {"seconds"}:  # wall time differs, of course
                        np.testing.assert_allclose(a[key], b[key], rtol=1e-6)
    assert (submitted / "results" / "likelihoods.csv").exists()


def test_training_cancelled_by_slurm_resumes_from_its_checkpoint(cluster, tiny_data, tmp_path):
    """scancel is what preemption looks like to the job: the rerun picks up the last epoch and
    ends with the parameters of an uninterrupted run; nothing half-written is left."""
    data = tiny_data
    config = json.dumps(
        {
            "hidden": [64],
            "epochs": 40,
            "batch_size": 10,
            "lr": 0.01,
            "masks": 2,
            "checkpoint_minutes": 0,
        }
    )
    train = [sys.executable, "-m", "arbench.train", "--data", str(data), "--model", "made"]
    train += ["--settings", config]
    straight, killed = tmp_path / "straight.pt", tmp_path / "killed.pt"
    subprocess.run([*train, "--out", str(straight)], check=True, capture_output=True)

    checkpoint = tmp_path / "killed.ckpt"
    script = tmp_path / "train.sh"
    command = [*train, "--out", str(killed), "--checkpoint", str(checkpoint)]
    script.write_text("#!/bin/sh\nexec " + " ".join(f"'{part}'" for part in command) + "\n")
    first = cluster.sbatch("--gpus=1", "--output=first.log", str(script), cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
        time.sleep(0.02)
    cluster.scancel(first)
    assert cluster.wait(first) == "CANCELLED"
    assert not killed.exists(), "a cancelled job must not leave a model behind"
    progress = load_checkpoint(checkpoint)["progress"]
    assert 1 <= progress["epoch"] < 40, "the job should be cancelled mid-training"
    # SIGTERM is caught between two steps: the checkpoint holds the epoch's position in it
    position = (
        f"in epoch {progress['epoch'] + 1} at step {progress['partial']['step'] + 1}"
        if progress["partial"]
        else f"after epoch {progress['epoch']}"
    )

    second = cluster.sbatch("--gpus=1", "--output=second.log", str(script), cwd=tmp_path)
    assert cluster.wait(second) == "COMPLETED", (tmp_path / "second.log").read_text()
    log = (tmp_path / "second.log").read_text()
    assert f"resuming from {checkpoint} {position}" in log
    ours, theirs = checkpoints.load(killed)["state"], checkpoints.load(straight)["state"]
    for key, value in theirs.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
