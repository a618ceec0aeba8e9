"""`arbench judge` on the shared tiny run: real test images read as real, a blurred set reads
worse, a folder of PNGs is judged as an .npz is, what is not a readable image is named and
skipped without blocking, and images of the wrong shape or too few are refused naming why."""

from __future__ import annotations

import csv
import os
import re

import numpy as np
import pytest
from PIL import Image

from arbench.data.format import load_dataset
from arbench.judge import NotTheDatasets, judge

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def test_images(finished):
    return load_dataset(finished / "results/data/mnist.npz").test


def judged(finished, tmp_path, samples):
    out = tmp_path / "judged.csv"
    summary = judge(
        [str(s) for s in samples], finished / "results", "mnist", out, tmp_path / "j.png"
    )
    return summary, list(csv.DictReader(out.open()))


def test_real_test_images_read_as_real_and_a_blurred_set_worse(finished, tmp_path, test_images):
    np.savez(tmp_path / "real.npz", samples=test_images)
    summary, rows = judged(finished, tmp_path, [tmp_path / "real.npz"])
    assert summary["against_real"]["fidelity"] == "reads as real (within the margin)"
    thick = test_images | np.roll(test_images, 1, axis=3) | np.roll(test_images, 1, axis=2)
    np.savez(tmp_path / "thick.npz", thick)  # its only array, not named `samples`
    blurred, _ = judged(finished, tmp_path, [tmp_path / "thick.npz"])
    assert blurred["against_real"]["fidelity"] == "worse than real"
    metric = summary["declared"]["fidelity"]["primary"]
    assert blurred["values"][metric]["value"] > summary["values"][metric]["value"]
    # the CSV: the set, real images and every model of the run, every metric with its error
    sets = {row["set"] for row in rows}
    assert {"yours", "real (valid)", "made", "gmm", "mob"} <= sets
    primary = [r for r in rows if r["set"] == "made" and r["metric"] == metric]
    assert primary[0]["role"] == "primary" and primary[0]["finding"]
    assert (tmp_path / "j.png").exists()


def test_a_folder_of_pngs_is_judged_and_entries_that_are_not_images_are_named(
    finished, tmp_path, test_images
):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index, image in enumerate(test_images):
        Image.fromarray(image[0] * 255).save(folder / f"{index}.png")
    os.mkfifo(folder / "pipe.png")  # never opened: opening a FIFO waits for a writer
    (folder / "empty.png").write_bytes(b"")
    summary, _ = judged(finished, tmp_path, [folder])
    assert summary["images"] == len(test_images)
    assert "FIFO" in summary["skipped"][str(folder / "pipe.png")]
    assert "empty" in summary["skipped"][str(folder / "empty.png")]
    assert summary["against_real"]["fidelity"] == "reads as real (within the margin)"


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((50, 1, 14, 14), np.uint8), "shape (1, 14, 14)"),
        (np.full((50, 1, 28, 28), 7, np.uint8), "2 levels"),
        (np.zeros((5, 1, 28, 28), np.uint8), "give at least"),
    ],
)
def test_images_the_run_cannot_judge_are_refused_naming_why(finished, tmp_path, images, message):
    np.savez(tmp_path / "odd.npz", samples=images)
    with pytest.raises(NotTheDatasets, match=re.escape(message)) as refused:
        judge([str(tmp_path / "odd.npz")], finished / "results", "mnist", tmp_path / "j.csv")
    if "shape" in message or "levels" in message:
        assert "odd.npz" in str(refused.value)
    assert not (tmp_path / "j.csv").exists()
