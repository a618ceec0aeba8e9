"""The benchmark scripts that CI can run, at tiny sizes on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_run_measures_every_job_at_tiny_sizes_on_the_cpu(shared_data, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "gpu_run.py"),
            *("--data-dir", str(shared_data / "binarized_mnist")),
            *("--out", str(tmp_path), "--device", "cpu", "--shrink", "--minutes", "2"),
            *("--config", str(REPO / "config" / "full.yaml")),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "gpu_run.json").read_text())
    assert record["nll_measured_on"].startswith("valid")  # no test split in ../shared
    full = yaml.safe_load((REPO / "config" / "full.yaml").read_text())
    assert set(record["jobs"]) == set(full["datasets"]["mnist"]["models"])
    for job in record["jobs"].values():
        assert job["test_nll"] > 0 and job["train_seconds"] > 0
    assert record["made_steps"]["float32_batch100"]["fraction_of_dense"] > 0
    assert (tmp_path / "made.metrics.csv").exists() and (tmp_path / "gpu_run.log").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gpu_run.json",
        "gpu_run.log",
        "made.metrics.csv",
        "nade.metrics.csv",
    ]  # what a device call can bring back: a few small files
