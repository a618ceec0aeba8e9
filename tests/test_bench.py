"""The benchmark scripts that CI can run, at tiny sizes on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FULL = REPO / "config" / "full.yaml"
sys.path.insert(0, str(REPO / "bench"))  # the scripts whose functions are tested by name


def run_shrunk_on_cpu(script: str, out: Path, *arguments: str) -> dict:
    """The script at tiny sizes on the CPU with the full config; returns its JSON record."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / f"{script}.py"), "--out", str(out)]
        + ["--device", "cpu", "--shrink", "--config", str(FULL), *arguments],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / f"{script}.json").read_text())


@pytest.mark.slow
def test_the_gpu_run_measures_every_job_at_tiny_sizes_on_the_cpu(shared_data, tmp_path):
    record = run_shrunk_on_cpu(
        "gpu_run", tmp_path, "--data-dir", str(shared_data / "binarized_mnist"), "--minutes", "2"
    )
    assert record["nll_measured_on"].startswith("valid")  # no test split in ../shared
    full = yaml.safe_load(FULL.read_text())
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
        "pixelcnn.metrics.csv",
    ]  # what a device call can bring back: a few small files


@pytest.mark.slow
def test_the_gpu_epochs_run_times_every_neural_job_of_the_full_config_on_the_cpu(tmp_path):
    record = run_shrunk_on_cpu("gpu_epochs", tmp_path)
    full = yaml.safe_load(FULL.read_text())
    neural = {
        f"{dataset} {model}"
        for dataset, spec in full["datasets"].items()
        for model in spec["models"]
        if model in ("nade", "made", "pixelcnn")
    }
    assert set(record["jobs"]) == neural
    for job in record["jobs"].values():
        assert job["train_seconds_an_epoch"] > 0 and job["valid_seconds_an_epoch"] > 0
        assert job["checkpoint_bytes"] > 0 and job["checkpoint_seconds"] > 0
        assert job["replicates"] == full["replicates"]
    assert record["projected_hours_one_device"] == pytest.approx(
        sum(job["projected_minutes"] for job in record["jobs"].values()) / 60
    )
    assert [p.name for p in tmp_path.iterdir()] == ["gpu_epochs.json"]


def test_a_study_run_in_segments_is_published_with_their_summed_wall_time(tmp_path):
    from publish_study import wall_and_memory

    logs = []
    for i, (seconds, kilobytes) in enumerate([(3296.2, 1439164), (52.65, 1072948)]):
        logs.append(tmp_path / f"segment{i}.log")
        logs[-1].write_text(f"Elapsed time: 0:54:56\n{seconds} s wall, {kilobytes} KB max RSS\n")
    seconds, gigabytes, untimed = wall_and_memory(logs)
    assert seconds == pytest.approx(3348.85) and gigabytes == pytest.approx(1439164 / 2**20)
    assert untimed == []
    killed = tmp_path / "killed.log"  # stopped from outside before /usr/bin/time printed
    killed.write_text(
        "[Wed Dec  2 00:12:48 2026]\nlocalrule train:\n[Wed Dec  2 02:31:42 2026]\n"
        "Select jobs to execute...\n"
    )
    seconds, gigabytes, untimed = wall_and_memory([*logs, killed])
    assert seconds == pytest.approx(3348.85 + 8334) and gigabytes == pytest.approx(1439164 / 2**20)
    assert len(untimed) == 1 and "killed.log" in untimed[0] and "lower bound" in untimed[0]
    unreadable = tmp_path / "unreadable.log"  # neither a time line nor timestamps
    unreadable.write_text("Select jobs to execute...\n")
    with pytest.raises(SystemExit, match="unreadable.log"):
        wall_and_memory([*logs, unreadable])


def test_a_resumed_training_published_by_older_code_is_timed_by_its_curve(tmp_path):
    from publish_study import OWN_COUNT, training_seconds

    curve = tmp_path / "pixelcnn.metrics.csv"
    curve.write_text(
        "epoch,train_nll,valid_nll,lr,seconds,images_per_second\n"
        "1,98.7,88.9,0.005,327.9,152.5\n2,87.6,86.3,0.003,320.8,155.8\n"
    )
    resumed = {"train_seconds": 160.9, "training": {"resumed": 2}}
    seconds, how = training_seconds(resumed, curve)
    assert seconds == pytest.approx(648.7) and how != OWN_COUNT
    straight = {"train_seconds": 700.0, "training": {"resumed": 0}}
    assert training_seconds(straight, curve) == (700.0, OWN_COUNT)
    counted_since_the_fix = {"train_seconds": 700.0, "training": {"resumed": 1}}
    assert training_seconds(counted_since_the_fix, curve) == (700.0, OWN_COUNT)
    mixture = {"train_seconds": 12.0, "training": None}
    assert training_seconds(mixture, tmp_path / "none.csv") == (12.0, OWN_COUNT)


SCRIPTS = sorted(p for p in (REPO / "bench").glob("*.py") if "argparse" in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_script_starts(script):
    """A script whose imports have rotted (a module renamed under it) fails here, not on the day
    someone reruns the benchmark."""
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_a_run_published_again_is_not_its_own_previous_answer(tmp_path):
    """Publishing the same run with a remade report must not put its answer beside itself as
    'the previous answer': it is refused, naming --previous, and the published study is kept."""
    from publish_study import publish

    out = tmp_path / "study"
    out.mkdir()
    (out / "report.md").write_text("# arbench report\n")
    (out / "verdicts.json").write_text("{}")
    (out / "run.json").write_text(json.dumps({"commit": "a" * 40}))
    with pytest.raises(SystemExit, match="--previous"):
        publish(tmp_path / "run", [], "a" * 40, out, {})
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "run.json", "verdicts.json"]
