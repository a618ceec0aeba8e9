"""Trained models in a user's hands: loaded in one line, sampled, completed and scored without
training.

    >>> import arbench
    >>> model = arbench.load("docs/study/models/mnist/nade.pt")
    >>> model.sample(4, seed=0).shape
    (4, 1, 28, 28)
    >>> nats = model.log_prob(model.sample(4, seed=0))
    >>> bool((nats < 0).all())
    True

A model file may have a card beside it (same name, `.json`; the study's published models have
one): the dataset and the preprocessing that made its images, the settings, the test NLL, how
training ended, the commit that trained it and the file's sha256. `load` checks a card against
the file it describes: its sha256, and the model, the image shape and levels and the dataset spec
it records against the weights; a card that lacks one of them, or disagrees, is refused naming
the field. Loading refuses a file that would run code (as every stage does) and one written by an
incompatible version of the model's code, naming both versions.

From the command line, without training:

    arbench sample MODEL --n 36 --out samples.png      # and samples.npz
    arbench complete MODEL IMAGE... --out completed.png
    arbench score MODEL IMAGE_OR_FOLDER... --out scores.csv

User images are put through the preprocessing of the model's dataset (crop, resize, grey or
colour, levels, binarization) before they are scored or completed: a colour photo given to a
binary MNIST model is made grey and binarized as MNIST's digits were; a file that cannot be
decoded is named and skipped.

What a user's disk holds is not trusted. Each entry named on the command line or found in a
folder that is not a readable, non-empty regular image file (a FIFO, a socket or a device, an
empty file, a link that leads nowhere or in a loop, an unreadable file, a folder's file not named
as an image) is named and skipped, and the rest are scored: a file is opened only after
`os.stat` has found a regular file, never blocking, and checked again once open. Links: a link
to a file is followed, and judged by what it leads to; a link to a folder inside a folder is not
followed (a folder is read only below itself, so no link loops it); a folder or link named on the
command line is read, since its user named it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import stat
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from arbench.complete import hidden_region
from arbench.core.cli import nonnegative_int, positive_int, run_stage, stage_parser
from arbench.core.contracts import plainly
from arbench.core.files import atomic_write
from arbench.core.plan import SettingsError, source_entry, source_spec, spec_levels
from arbench.data.download import file_digest
from arbench.report.figures import completion_panels, image_panel
from arbench.training.checkpoints import CheckpointError, load_model

log = logging.getLogger("arbench.trained")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
# An image above this many pixels is refused from its header, before it is decoded: a model of
# tens of pixels a side gains nothing from more, and decoding 144 million pixels takes over a GB
# (Pillow's own bomb guard refuses only above 179 million)
MAX_PIXELS = 25_000_000
ENLARGED = 2.0  # an image enlarged more than this many times a side is warned of


def card_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


class TrainedModel:
    """A trained model and its card: `sample`, `log_prob` (nats per image), `complete`, and the
    preprocessing of its dataset for image files (`images_from_files`)."""

    def __init__(self, model, card: dict, path: Path):
        self.model, self.card, self.path = model, card, path
        if isinstance(model, torch.nn.Module):
            model.eval()

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.model.shape)

    @property
    def levels(self) -> int:
        return self.model.levels

    def __repr__(self) -> str:
        return f"<{self.name} of images {self.shape} on {self.levels} levels from {self.path}>"

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` images (n, C, H, W), uint8 on the model's levels."""
        return self.model.sample(n, seed=seed)

    def checked(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if tuple(images.shape[1:]) != self.shape:
            raise ValueError(
                f"images of shape {tuple(images.shape[1:])} for a model of {self.shape}: put "
                "image files through images_from_files (the dataset's preprocessing) first"
            )
        if images.size and (images.min() < 0 or images.max() >= self.levels):
            raise ValueError(
                f"image values {images.min()}..{images.max()} outside the model's levels "
                f"0..{self.levels - 1}"
            )
        return images.astype(np.uint8)

    def log_prob(self, images) -> np.ndarray:
        """log p(image) in nats, one per image (an upper bound of the NLL for the full and PCA
        Gaussian mixtures, whose `exact` is False)."""
        with torch.inference_mode():
            return self.model.log_prob(self.checked(images)).double().cpu().numpy()

    def complete(self, images, hidden_rows: float = 0.5, count: int = 1, seed: int = 0):
        """(B, count, C, H, W): `count` completions of each image's bottom `hidden_rows`
        (a fraction of its rows), given the rest."""
        hidden = hidden_region(self.shape, hidden_rows)
        return self.model.complete(self.checked(images), hidden, count, seed)

    def images_from_files(self, files, game: str | None = None):
        """(images (N, C, H, W), the files decoded, {file: why it was skipped}, {file: warnings}):
        each image file (folders are searched) prepared as the model's dataset prepared its
        images, from the spec its card records (`prepared_images`)."""
        spec = self.card.get("dataset", {}).get("spec")
        if spec is None:
            raise ValueError(
                f"{self.path} has no card with its dataset's spec ({card_path(self.path)}): "
                "its preprocessing is not known"
            )
        return prepared_images(files, spec, self.shape, game)


def prepared_images(files, spec: dict, shape, game: str | None = None):
    """(images (N, C, H, W), the files decoded, {file: why it was skipped}, {file: warnings}):
    each image file (folders are searched) prepared as the dataset of `spec` prepared its images,
    to `shape`. `game` names the Atari game whose play area a screen is cut to. An entry that is
    not a readable regular file is named and skipped without being opened; a file over
    `MAX_PIXELS` is refused before it is decoded; an image far smaller than `shape`, or animated
    (its first frame is used), is warned of."""
    prepare = source_entry(spec["source"]).image_preparer()
    images, decoded, warned = [], [], {}
    found, skipped = image_files(files)
    for file, why in skipped.items():
        log.warning("%s: skipped (%s)", file, why)
    for file in found:
        try:
            with open_regular(file) as handle, Image.open(handle) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise ValueError(
                        f"{image.width}x{image.height} pixels, over the {MAX_PIXELS:,} that "
                        "arbench decodes: shrink it first"
                    )
                warnings = odd_image(image, shape)
                image.load()
                images.append(prepare(image, spec, game))
        except NotAnImage as e:
            skipped[file] = str(e)
            log.warning("%s: skipped (%s)", file, skipped[file])
            continue
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            skipped[file] = plainly(e)
            log.warning("%s: skipped (%s)", file, skipped[file])
            continue
        decoded.append(file)
        if warnings:
            warned[file] = warnings
            for warning in warnings:
                log.warning("%s: %s", file, warning)
    empty = np.zeros((0, *shape), np.uint8)
    return (np.stack(images) if images else empty), decoded, skipped, warned


def odd_image(image, shape) -> list[str]:
    """What makes an image file one a model of images of `shape` was not made for, before it is
    decoded."""
    found = []
    height, width = shape[1:]
    enlarged = max(height / image.height, width / image.width)
    if enlarged > ENLARGED:
        found.append(
            f"{image.width}x{image.height} pixels, enlarged about {enlarged:.0f} times to the "
            f"model's {width}x{height}: little of what is scored is the image's own"
        )
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        found.append(f"animated ({frames} frames): only its first frame is used")
    return found


class NotAnImage(ValueError):
    """An entry of a user's disk that is not a readable regular file; the message says what it
    is."""


KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def what_is(path: Path) -> str | None:
    """Why `path` is not a readable regular file with something in it, or None when it is:
    found with `os.stat` (which follows a link to what it leads to), never by opening it."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a link to {os.readlink(path)}, which does not exist"
        return "does not exist"
    except OSError as error:  # a link loop, a path through something that is not a folder
        return f"cannot be reached ({error.strerror or error})"
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in KINDS if test(status.st_mode)), "not a regular file")
        return f"{kind}, not an image file"
    if status.st_size == 0:
        return "an empty file"
    return None


def open_regular(path: Path):
    """`path` opened for reading if it is a regular file with something in it: checked before it
    is opened (a FIFO is never opened: opening one waits for a writer), opened without waiting,
    and checked again once open (the entry may have been replaced in between)."""
    if (problem := what_is(path)) is not None:
        raise NotAnImage(problem)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise NotAnImage(f"cannot be read ({error.strerror or error})") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_size == 0:
        os.close(descriptor)
        raise NotAnImage("replaced by something that is not an image file while being read")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def _folder_entries(folder: Path, skipped: dict) -> list[Path]:
    """The files under `folder` named as images, sorted; its other entries into `skipped`. A
    link to a folder is not followed, so that a folder is read only below itself."""
    found = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        skipped[folder] = f"a folder that cannot be read ({error.strerror or error})"
        return found
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            found += _folder_entries(path, skipped)
        elif entry.is_symlink() and os.path.isdir(path):
            skipped[path] = "a link to a folder, not followed inside a folder: name it to read it"
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped[path] = f"not named as an image file ({path.suffix or 'no suffix'})"
        elif (problem := what_is(path)) is not None:
            skipped[path] = problem
        else:
            found.append(path)
    return found


def image_files(paths) -> tuple[list[Path], dict[Path, str]]:
    """(the files to read, {entry: why it is skipped}): each path given (a file named is tried
    whatever its name) and the image files (by suffix) under each folder given, sorted; every
    entry that is not a readable regular file with something in it is skipped, saying what it
    is, without being opened."""
    found, skipped = [], {}
    for path in map(Path, [paths] if isinstance(paths, str | Path) else paths):
        if os.path.isdir(path):
            found += _folder_entries(path, skipped)
        elif (problem := what_is(path)) is not None:
            skipped[path] = problem
        else:
            found.append(path)
    return found, skipped


# What a card must record of the file it describes, each checked against the file: the file's
# sha256 before anything is read of it, the rest against the weights it holds
CARD_FIELDS = ("model", "dataset.spec", "dataset.shape", "dataset.levels", "file.sha256")
MISSING = object()


def card_field(card: dict, field: str):
    value = card
    for part in field.split("."):
        value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
    return value


def read_card(path: Path) -> dict:
    """The card at `path` (a user's file: read only if it is a regular one)."""
    try:
        with open_regular(path) as handle:
            card = json.loads(handle.read().decode())
    except NotAnImage as error:
        raise CheckpointError(f"{path}: the model's card is {error}; it was not used") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({plainly(error)})") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"{path} holds a {type(card).__name__}, not a card (a JSON object)")
    return card


def card_refused(card: Path, field: str, problem: str) -> CheckpointError:
    return CheckpointError(
        f"{card}: {field} {problem}; the model was not used. A card records the model, its "
        "dataset's spec, the images' shape and levels, and the file's sha256, and each must be "
        "the file's (remake the card with the model, or remove it to load the file alone)",
        f"{field} {problem}",
    )


def check_card(card: dict, card_file: Path, model) -> None:
    """Refuse a card that disagrees with the weights it describes, naming the field."""
    found = {
        "model": model.name,
        "dataset.shape": list(model.shape),
        "dataset.levels": model.levels,
    }
    for field, value in found.items():
        if card_field(card, field) != value:
            recorded = json.dumps(card_field(card, field))
            raise card_refused(card_file, field, f"is {recorded}, but the file holds {value!r}")
    spec = card_field(card, "dataset.spec")
    try:
        spec = source_spec(spec) if isinstance(spec, dict) else None
    except SettingsError as error:
        raise card_refused(card_file, "dataset.spec", f"is not a dataset spec ({error})") from None
    if spec is None:
        raise card_refused(card_file, "dataset.spec", "is not a mapping")
    blank = Image.new("RGB", (64, 64))
    made = tuple(source_entry(spec["source"]).image_preparer()(blank, spec).shape)
    if made != tuple(model.shape) or spec_levels(spec) != model.levels:
        raise card_refused(
            card_file,
            "dataset.spec",
            f"makes images of shape {made} on {spec_levels(spec)} levels, but the file models "
            f"{tuple(model.shape)} on {model.levels}",
        )


def load(path: str | Path) -> TrainedModel:
    """The model in `path`, with its card when one lies beside it (`.json`), checked: the file
    must be a regular file holding an arbench model of this version of its code; a card must
    record every field of `CARD_FIELDS`, its sha256 must be the file's and its model, shape,
    levels and dataset spec those of the weights."""
    path = Path(path)
    card_file, card = card_path(path), {}
    carded = os.path.lexists(card_file)  # an empty card is a card too, refused for what it lacks
    if carded:
        card = read_card(card_file)
        if not os.path.lexists(path):
            raise FileNotFoundError(
                f"{path} is not here; its card says how to make it: {card.get('make', '')}"
            )
    if (problem := what_is(path)) is not None:
        raise CheckpointError(f"{path}: {problem}; it was not used as a model file")
    if carded:
        missing = [field for field in CARD_FIELDS if card_field(card, field) is MISSING]
        if missing:
            raise card_refused(
                card_file, ", ".join(missing), "are missing" if len(missing) > 1 else "is missing"
            )
        recorded = card_field(card, "file.sha256")
        if (found := file_digest(path)) != recorded:
            raise CheckpointError(
                f"{path} has sha256 {found}, but its card {card_file} records "
                f"{recorded}: the file is not the one the card describes (damaged, or replaced); "
                "it was not used"
            )
    model = load_model(path)
    if carded:
        check_card(card, card_file, model)
    return TrainedModel(model, card, path)


# -- reproducing a card's check ------------------------------------------------------------------


def check_images(card: dict, shared: Path) -> np.ndarray:
    """The fixed images a card's `check` names, rebuilt: the first `count` images of a split file
    (`amat`) or of an image archive put through the dataset's preprocessing (`archive`), both under
    `shared` (`../shared/data`), or the test split of the dataset's spec generated again with
    fewer frames (`generated`, Atari)."""
    check = card["check"]
    kind, count = check["kind"], check["count"]
    spec = card["dataset"]["spec"]
    if kind == "amat":
        from arbench.data.mnist import parse_amat

        rows = parse_amat(shared / check["file"])[:count]
        return rows.reshape(len(rows), *card["dataset"]["shape"]).astype(np.uint8)
    if kind == "archive":
        import zipfile

        prepare = source_entry(spec["source"]).image_preparer()
        images = []
        with zipfile.ZipFile(shared / check["file"]) as archive:
            names = sorted(
                n for n in archive.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES
            )
            for name in names[:count]:
                with archive.open(name) as handle, Image.open(handle) as image:
                    image.load()
                    images.append(prepare(image, spec))
        return np.stack(images)
    if kind == "generated":
        import tempfile

        build = source_entry(spec["source"]).load()
        with tempfile.TemporaryDirectory() as resources:
            splits, _, _ = build({**spec, **check["spec"]}, Path(resources))
        return splits["test"][:count]
    raise ValueError(f"unknown kind of check images {kind!r}")


# -- the commands ---------------------------------------------------------------------------


def grid_out(out: str) -> tuple[Path, Path]:
    """(PNG, NPZ) for an output named with either suffix or none."""
    stem = Path(out).with_suffix("")
    return stem.with_suffix(".png"), stem.with_suffix(".npz")


def draw(model_path, n: int, seed: int, out: str) -> Path:
    model = load(model_path)
    images = model.sample(n, seed)
    png, npz = grid_out(out)
    image_panel(
        images, model.levels, f"{model.name}: {n} samples, seed {seed}", png.with_suffix("")
    )
    atomic_write(npz, lambda handle: np.savez(handle, samples=images, seed=np.int64(seed)))
    log.info("wrote %s and %s", png, npz)
    return png


def complete_files(model_path, files, hidden_rows: float, count: int, seed: int, out, game=None):
    model = load(model_path)
    images, decoded, _, _ = model.images_from_files(files, game)
    if not len(images):
        raise ValueError("none of the files given is a decodable image")
    filled = model.complete(images, hidden_rows, count, seed)
    hidden = hidden_region(model.shape, hidden_rows)
    png, npz = grid_out(out)
    title = f"{model.name}: the bottom {hidden_rows:.0%} of the rows completed"
    completion_panels(
        images, hidden, {model.name: filled}, model.levels, title, png.with_suffix("")
    )
    atomic_write(
        npz,
        lambda handle: np.savez(
            handle,
            originals=images,
            completions=filled,
            hidden=hidden,
            files=np.array(decoded, str),
        ),
    )
    log.info("wrote %s and %s", png, npz)
    return png


SCORE_FIELDS = ["file", "nll_nats", "bits_per_dim", "likelihood", "warnings", "error"]


def score(model_path, files, out, game=None) -> list[dict]:
    """One CSV row per file: its NLL in nats and bits/dim under the model and what to know of
    the image it was computed on (`odd_image`), or why it was not scored."""
    model = load(model_path)
    images, decoded, skipped, warned = model.images_from_files(files, game)
    nll = -model.log_prob(images) if len(images) else np.zeros(0)
    dims = int(np.prod(model.shape))
    kind = "exact" if model.model.exact else "upper bound"
    rows = [
        {
            "file": str(file),
            "nll_nats": float(value),
            "bits_per_dim": float(value) / (dims * math.log(2)),
            "likelihood": kind,
            "warnings": "; ".join(warned.get(file, [])),
            "error": "",
        }
        for file, value in zip(decoded, nll, strict=True)
    ]
    empty = {"nll_nats": "", "bits_per_dim": "", "likelihood": "", "warnings": ""}
    rows += [{"file": str(file), **empty, "error": why} for file, why in skipped.items()]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SCORE_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(out), lambda handle: handle.write(text.getvalue().encode()))
    log.info("scored %d files (%d skipped) into %s", len(decoded), len(skipped), out)
    return rows


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1), got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.trained", "Use a trained model without training it.")
    commands = parser.add_subparsers(dest="command", required=True)
    drawn = commands.add_parser("sample", help="draw samples to a PNG grid and an .npz")
    completed = commands.add_parser("complete", help="complete the bottom rows of image files")
    scored = commands.add_parser("score", help="NLL of image files, one CSV row per file")
    for sub in (drawn, completed, scored):
        sub.add_argument("model", help="a model file (.pt), its card (.json) beside it")
    drawn.add_argument("--n", type=positive_int, default=36)
    for sub in (drawn, completed):
        sub.add_argument("--seed", type=nonnegative_int, default=0)
        sub.add_argument("--out", required=True, help="PNG grid (an .npz of the same name too)")
    for sub in (completed, scored):
        sub.add_argument("images", nargs="+", help="image files or folders of them")
        sub.add_argument("--game", help="Atari: the game whose play area a screen is cut to")
    completed.add_argument("--hidden-rows", type=fraction, default=0.5)
    completed.add_argument("--count", type=positive_int, default=4)
    scored.add_argument("--out", required=True, help="CSV to write")
    args = parser.parse_args(argv)
    if args.command == "sample":
        work = lambda: draw(args.model, args.n, args.seed, args.out)  # noqa: E731
    elif args.command == "complete":
        work = lambda: complete_files(  # noqa: E731
            args.model, args.images, args.hidden_rows, args.count, args.seed, args.out, args.game
        )
    else:
        work = lambda: score(args.model, args.images, args.out, args.game)  # noqa: E731
    outputs = (args.out,) if args.command == "score" else grid_out(args.out)
    return run_stage(
        f"{args.command} with {args.model}",
        work,
        outputs=outputs,
        on_stop="Nothing was left half-written; run the same command again to redo it.",
    )


if __name__ == "__main__":
    sys.exit(main())
