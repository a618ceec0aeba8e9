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
training ended, the commit that trained it and the file's sha256, which `load` checks. Loading
refuses a file that would run code (as every stage does) and one written by an incompatible
version of the model's code, naming both versions.

From the command line, without training:

    arbench sample MODEL --n 36 --out samples.png      # and samples.npz
    arbench complete MODEL IMAGE... --out completed.png
    arbench score MODEL IMAGE_OR_FOLDER... --out scores.csv

User images are put through the preprocessing of the model's dataset (crop, resize, grey or
colour, levels, binarization) before they are scored or completed: a colour photo given to a
binary MNIST model is made grey and binarized as MNIST's digits were; a file that cannot be
decoded is named and skipped.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from arbench.complete import hidden_region
from arbench.core.cli import nonnegative_int, positive_int, run_stage, stage_parser
from arbench.core.contracts import plainly
from arbench.core.files import atomic_write
from arbench.core.plan import source_entry
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
        images, from the spec its card records. `game` names the Atari game whose play area a
        screen is cut to. A file over `MAX_PIXELS` is refused before it is decoded; an image
        far smaller than the model's, or animated (its first frame is used), is warned of."""
        spec = self.card.get("dataset", {}).get("spec")
        if spec is None:
            raise ValueError(
                f"{self.path} has no card with its dataset's spec ({card_path(self.path)}): "
                "its preprocessing is not known"
            )
        prepare = source_entry(spec["source"]).image_preparer()
        images, decoded, skipped, warned = [], [], {}, {}
        for file in image_files(files):
            try:
                with Image.open(file) as image:
                    if image.width * image.height > MAX_PIXELS:
                        raise ValueError(
                            f"{image.width}x{image.height} pixels, over the {MAX_PIXELS:,} that "
                            "arbench decodes: shrink it first"
                        )
                    warnings = self.odd_image(image)
                    image.load()
                    images.append(prepare(image, spec, game))
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
                skipped[file] = plainly(e)
                log.warning("%s: not scored (%s)", file, skipped[file])
                continue
            decoded.append(file)
            if warnings:
                warned[file] = warnings
                for warning in warnings:
                    log.warning("%s: %s", file, warning)
        empty = np.zeros((0, *self.shape), np.uint8)
        return (np.stack(images) if images else empty), decoded, skipped, warned

    def odd_image(self, image) -> list[str]:
        """What makes an image file one the model was not made for, before it is decoded."""
        found = []
        height, width = self.shape[1:]
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


def image_files(paths) -> list[Path]:
    """The files given, and the image files (by suffix) under the folders given, sorted."""
    found = []
    for path in map(Path, [paths] if isinstance(paths, str | Path) else paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return found


def load(path: str | Path) -> TrainedModel:
    """The model in `path`, with its card when one lies beside it (`.json`), checked: the card's
    sha256 must be the file's, the file must hold an arbench model of this version of its code.
    """
    path = Path(path)
    card = {}
    if card_path(path).exists():
        try:
            card = json.loads(card_path(path).read_text())
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{card_path(path)} is not valid JSON ({error})") from None
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is not here; its card says how to make it: {card.get('make', '')}"
            )
        recorded = card.get("file", {}).get("sha256")
        if recorded and (found := file_digest(path)) != recorded:
            raise CheckpointError(
                f"{path} has sha256 {found}, but its card {card_path(path)} records "
                f"{recorded}: the file is not the one the card describes (damaged, or replaced); "
                "it was not used"
            )
    return TrainedModel(load_model(path), card, path)


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
    the image it was computed on (`TrainedModel.odd_image`), or why it was not scored."""
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
    return run_stage(f"{args.command} with {args.model}", work)


if __name__ == "__main__":
    sys.exit(main())
