"""The study's published models (`docs/study/models/`) are what their cards say: each loads, its
file is the one the card's sha256 names, it samples and completes, and on the card's fixed images
it gives the card's NLL; together they stay within the repository's size budget."""

from __future__ import annotations

import csv
import doctest
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import arbench
from arbench import trained

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "docs" / "study" / "models"
CARDS = sorted(MODELS.glob("*/*.json"))
BUDGET = 50 * 2**20


def test_the_study_publishes_a_model_of_every_dataset_within_the_size_budget():
    cards = [json.loads(path.read_text()) for path in CARDS]
    published = [card for card in cards if card["published"]]
    assert {card["dataset"]["name"] for card in published} == {
        "mnist",
        "atari",
        "anime",
    }
    sizes = [(MODELS / c["dataset"]["name"] / c["file"]["name"]).stat().st_size for c in published]
    assert sizes == [card["file"]["bytes"] for card in published]
    assert sum(sizes) <= BUDGET
    for card in cards:
        if not card["published"]:
            assert (
                card["make"].startswith("snakemake ")
                and not (MODELS / card["dataset"]["name"] / card["file"]["name"]).exists()
            )


@pytest.mark.parametrize(
    "card_file", [c for c in CARDS if json.loads(c.read_text())["published"]], ids=str
)
def test_a_published_model_is_what_its_card_says(card_file, shared_data):
    card = json.loads(card_file.read_text())
    model = arbench.load(card_file.with_suffix(".pt"))  # refuses a file the sha256 does not name
    assert model.name == card["model"] and list(model.shape) == card["dataset"]["shape"]
    samples = model.sample(3, seed=0)
    assert samples.shape == (3, *model.shape) and int(samples.max()) < model.levels
    completions = model.complete(samples[:1], hidden_rows=0.5, count=2, seed=0)
    top = model.shape[1] // 2
    assert np.array_equal(completions[0, :, :, :top], np.repeat(samples[:1, :, :top], 2, axis=0))

    check = card["check"]
    if check["kind"] != "generated" and not (shared_data / check["file"]).exists():
        pytest.skip(f"{check['file']} is not in ../shared/data: the card's check needs it")
    images = trained.check_images(card, shared_data)
    if check["kind"] == "generated" and len(images) != check["count"]:
        pytest.skip(
            f"the {card['dataset']['name']} source at this commit makes {len(images)} check images "
            f"where the card was checked on {check['count']}: the card predates a change of the "
            "source; publish the study again (bench/publish_study.py)"
        )
    nll = -model.log_prob(images)
    assert len(nll) == check["count"]
    assert abs(nll.mean() - check["nll_nats"]) <= check["nll_nats_se"]


def test_the_documented_example_runs(monkeypatch):
    monkeypatch.chdir(REPO)
    failures, tried = doctest.testmod(trained, raise_on_error=False)
    assert tried > 0 and failures == 0


def readme_blocks(language: str) -> list[str]:
    section = (REPO / "README.md").read_text().split("## Use the trained models", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


def test_the_readme_python_lines_run_as_written(monkeypatch):
    (block,) = readme_blocks("python")
    monkeypatch.chdir(REPO)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own lines
    assert scope["nats"].shape == (16,) and (scope["nats"] < 0).all()
    assert scope["filled"].shape == (4, 3, *scope["model"].shape)


def test_the_readme_commands_run_as_written(tmp_path):
    """Run in a folder holding the files the commands name: a face photo, a folder of digits."""
    (block,) = readme_blocks("bash")
    (tmp_path / "docs").symlink_to(REPO / "docs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(tmp_path / "face.jpg")
    (tmp_path / "my_digits").mkdir()
    for i in range(3):
        digit = (rng.random((28, 28)) < 0.2).astype(np.uint8) * 255
        Image.fromarray(digit).save(tmp_path / "my_digits" / f"{i}.png")
    for line in block.strip().splitlines():
        command = shlex.split(line)
        assert command[0] == ".venv/bin/arbench"  # the console script: python -m arbench
        done = subprocess.run(
            [sys.executable, "-m", "arbench", *command[1:]],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, (line, done.stderr.decode()[-2000:])
        out = tmp_path / command[command.index("--out") + 1]
        assert out.is_file() and out.stat().st_size > 0
    with open(tmp_path / "scores.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3
