"""The slow tier's own machinery: the one shared tiny run is made once only if xdist sends every
test that reads it to one worker (pytest 9.2 stopped reading the node ids xdist 3.8 marks its
groups in, and each worker then made its own run without a word), and a workflow that hangs is
stopped with what it printed instead of holding CI until its limit."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import tiny_workflow

WORKFLOW_CONFTEST = Path(__file__).with_name("conftest.py")


def test_every_test_reading_the_tiny_run_goes_to_one_worker(tmp_path):
    (tmp_path / "conftest.py").write_text(
        WORKFLOW_CONFTEST.read_text().replace("from tiny_workflow import", "# ")
    )
    (tmp_path / "test_grouped.py").write_text(
        "import os, pathlib, pytest\n"
        "@pytest.fixture(scope='session')\n"
        "def finished():\n"
        "    return os.environ['PYTEST_XDIST_WORKER']\n"
        "@pytest.mark.parametrize('i', range(8))\n"
        "def test_reads(finished, i):\n"
        "    pathlib.Path(__file__).with_name(f'read_{i}').write_text(finished)\n"
        "@pytest.mark.parametrize('i', range(8))\n"
        "def test_other(i):\n"
        "    pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", "/dev/null"]
        + ["-n", "2", "--dist", "loadgroup", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    workers = {path.read_text() for path in tmp_path.glob("read_*")}
    assert len(workers) == 1, f"the tests reading the tiny run ran on {sorted(workers)}"


def test_a_workflow_still_running_after_its_time_is_stopped_with_its_output(tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_workflow, "WORKFLOW_TIMEOUT", 2)
    survivor = tmp_path / "survivor"
    # a job of the stuck run: in its process group, it must not outlive it
    script = f"(sleep 4; touch {survivor}) & echo started; sleep 60"
    started = time.monotonic()
    with pytest.raises(AssertionError, match="still running after 2 s, stopped") as stopped:
        tiny_workflow.run(["sh", "-c", script], tmp_path)
    assert "started" in str(stopped.value)
    assert time.monotonic() - started < 30
    time.sleep(4)
    assert not survivor.exists()
