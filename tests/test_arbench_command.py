"""The `arbench` command: one entry for what people run by hand, every stage among it."""

import subprocess
import sys

import pytest

from arbench.commands import STAGES, TRAINED, main


def arbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "arbench", *args], capture_output=True, text=True, check=False
    )


def test_help_lists_every_command_and_every_stage():
    shown = arbench("--help")
    assert shown.returncode == 0
    for name in TRAINED:
        assert f"\n  {name} " in shown.stdout
    for name in STAGES:
        assert f"stage {name}" in shown.stdout
    assert "\n  prepare " in shown.stdout


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_answers_under_its_typed_name(stage, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["stage", stage, "--help"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: arbench stage {stage} ")


def test_trained_model_commands_name_themselves_as_typed(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    assert capsys.readouterr().out.startswith("usage: arbench score ")


def test_an_unknown_command_is_refused_with_the_list():
    refused = arbench("stage", "trian")
    assert refused.returncode == 2
    assert "unknown command 'stage NAME'" in refused.stderr and "stage train" in refused.stderr
    assert arbench("fit").returncode == 2
