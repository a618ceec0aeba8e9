"""What a failing run says where the user looks: the console shows each failed job's own reason,
and the advice it gives works as written in the run it came from."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess

import numpy as np
import pytest
from tiny_workflow import TINY, snakemake

pytestmark = pytest.mark.slow


def test_a_failed_job_prints_its_own_reason_at_the_console(tmp_path):
    config = copy.deepcopy(TINY)
    config["datasets"] = {"atari": {**TINY["datasets"]["atari"], "games": ["Pongg"]}}
    result = snakemake(tmp_path, config, check=False)
    assert result.returncode != 0
    console = result.stdout + result.stderr  # what the user sees, not the job's log
    assert "arbench (prepare job): prepare results/data/atari.npz failed: unknown Atari game " in (
        console
    )


def test_the_remake_advice_of_a_failed_job_works_verbatim_in_its_own_run(finished, tmp_path):
    """A per-image NLL file one row short fails the report job; the console's advice repeats
    the run's own command line (its config file, which is not the default one) and remakes the
    file with what depends on it when run exactly as printed."""
    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir, symlinks=True)
    nll = workdir / "results/metrics/mnist/nade.npz"
    with np.load(nll) as saved:
        short = {key: saved[key] for key in saved.files}
    short["nll"] = short["nll"][:-1]
    np.savez(nll, **short)
    failed = snakemake(workdir, TINY, "--forcerun", "report", check=False)
    assert failed.returncode != 0
    console = failed.stdout + failed.stderr
    line = next(x for x in console.splitlines() if x.startswith("arbench (report job):"))
    assert "nll has" in line and "results/metrics/mnist/nade.npz" in line
    advice = re.search(r"with `([^`]+)`", line).group(1)
    assert "--configfile" in advice and advice.endswith("--forcerun results/metrics/mnist/nade.npz")
    done = subprocess.run(advice, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with np.load(nll) as remade:
        assert len(remade["nll"]) == len(short["nll"]) + 1
    assert (workdir / "results/report.md").stat().st_mtime > nll.stat().st_mtime
