"""What every file the stages hand each other holds, checked where it is written and where it is
read: one contract per kind of file.

A contract names the file kind, the rule that makes it, and what a good file holds: the arrays of
an `.npz` with their dtypes, shapes and values (images on `0..levels-1`, finite numbers), the keys
of a JSON summary and that its measurements are finite, the keys of a torch file. `write` checks
the content before it is written (atomically); `read` opens the file (a truncated zip, a torch
file cut short, JSON that does not parse), checks it the same way and returns it. A file that
fails is reported as a `DamagedFile`: one line naming the file, what is wrong, and the command
that makes it again. `scan` checks the results of a run before Snakemake plans it (cheaply: a
file already checked at its size and time is not read again), so that a damaged result is made
again with what depends on it instead of failing every job downstream.

The dataset file and its sidecar have their contract in `arbench.data.format`, model files and
checkpoints in `arbench.training.checkpoints`; this module checks them through those.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arbench.core.files import atomic_write
from arbench.core.plan import ALWAYS_MEASURED


class DamagedFile(ValueError):
    """A file that does not hold what its writer writes; the message says how to remake it, and
    `problem` what is wrong."""

    def __init__(self, message: str, problem: str = ""):
        super().__init__(message)
        self.problem = problem or message


# The command line of the run a job belongs to, as its user typed it (the workflow sets it,
# `arbench.run_command`), so that advice repeats it: config files, --config, profile and all
RUN_COMMAND = "ARBENCH_COMMAND"


def remake(path, rule: str) -> str:
    """How to make `path` again, with what depends on it, in one command."""
    command = os.environ.get(RUN_COMMAND)
    if command:
        return (
            f"remake it, with what depends on it, with `{command} --forcerun {path}` (the "
            f"{rule} rule)"
        )
    return (
        f"remake it, with what depends on it, with `snakemake --cores all --forcerun {path}` "
        f"(the {rule} rule), adding the --configfile and --config of the run that made it"
    )


def damaged(path, rule: str, problem: str) -> DamagedFile:
    return DamagedFile(f"{path}: {problem}; {remake(path, rule)}", problem)


READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class Array:
    """One array of an `.npz`: its kind of values and its number of dimensions. `images` are
    uint8 (N, C, H, W), or with `ndim` 5 (N, K, C, H, W), on the file's levels."""

    name: str
    values: str  # "images", "floats" (finite), "integers", "booleans"
    ndim: int | None = None
    per_image: bool = False  # one value per image of a split: as many as the reader expects


DTYPES = {
    "images": lambda a: a.dtype == np.uint8,
    "floats": lambda a: np.issubdtype(a.dtype, np.floating),
    "integers": lambda a: np.issubdtype(a.dtype, np.integer),
    "booleans": lambda a: a.dtype == np.bool_,
}


@dataclass(frozen=True)
class Arrays:
    """An `.npz` of named arrays. Images are checked against `levels` and `shape` where the
    reader knows them (the dataset's), else against the file's own `levels`."""

    kind: str
    rule: str
    arrays: tuple[Array, ...]

    def check(self, path, found: dict, levels=None, shape=None, count=None) -> None:
        missing = [a.name for a in self.arrays if a.name not in found]
        if missing:
            raise damaged(
                path,
                self.rule,
                f"has no {', '.join(missing)} (a {self.kind} holds "
                f"{', '.join(a.name for a in self.arrays)})",
            )
        if levels is None and "levels" in found:
            levels = int(found["levels"])
        for spec in self.arrays:
            array = np.asarray(found[spec.name])
            if not DTYPES[spec.values](array):
                raise damaged(path, self.rule, f"{spec.name} is {array.dtype}, not {spec.values}")
            if spec.ndim is not None and array.ndim != spec.ndim:
                raise damaged(
                    path, self.rule, f"{spec.name} has shape {array.shape}, not {spec.ndim} axes"
                )
            if spec.values == "floats" and array.size and not np.isfinite(array).all():
                bad = int((~np.isfinite(array)).sum())
                raise damaged(path, self.rule, f"{spec.name} holds {bad} NaN or infinite values")
            if spec.values == "images":
                check_images(path, self.rule, spec.name, array, levels, shape)
            if spec.per_image and count is not None and len(array) != count:
                raise damaged(path, self.rule, f"{spec.name} has {len(array)} values, not {count}")

    def read(self, path, levels=None, shape=None, count=None) -> dict[str, np.ndarray]:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{self.kind} {path} does not exist; {remake(path, self.rule)}")
        try:
            with np.load(path, allow_pickle=False) as archive:
                found = {name: archive[name] for name in archive.files}
        except READ_ERRORS as error:
            raise damaged(path, self.rule, f"is not a readable .npz ({plainly(error)})") from None
        self.check(path, found, levels, shape, count)
        return found

    def write(self, path, content: dict, levels=None, shape=None) -> None:
        self.check(path, content, levels, shape)
        atomic_write(Path(path), lambda handle: np.savez(handle, **content))


def check_images(path, rule, name, array, levels, shape) -> None:
    if array.ndim not in (4, 5):
        raise damaged(path, rule, f"{name} has shape {array.shape}, not (N, C, H, W)")
    if shape is not None and tuple(array.shape[-3:]) != tuple(shape):
        raise damaged(
            path, rule, f"{name} are images of {tuple(array.shape[-3:])}, not {tuple(shape)}"
        )
    if levels is not None and array.size and int(array.max()) >= levels:
        outside = int((array >= levels).sum())
        raise damaged(
            path,
            rule,
            f"{name} hold {outside} values outside 0..{levels - 1} (up to {int(array.max())}): "
            f"not images of {levels} levels",
        )


# What a library's message means where we know it
ZIP_DAMAGE = ("central directory", "PytorchStreamReader", "not a zip file", "Bad magic number")
WORDS = 160  # the most characters of a library's message we repeat


def plainly(error: BaseException) -> str:
    """A library's error in our words: what it means where we know it (a zip archive cut short
    or damaged: an .npz or a torch file; a file that ends early), otherwise its first sentence,
    shortened at a word where it runs long, never mid-word."""
    text = str(error).strip()
    if isinstance(error, zipfile.BadZipFile | zlib.error) or any(m in text for m in ZIP_DAMAGE):
        return "its zip archive is cut short or damaged"
    if isinstance(error, EOFError):
        return "it ends early: cut short"
    sentence = re.split(r"(?<=[.!?])\s+|\n", text, maxsplit=1)[0] if text else ""
    if not sentence:
        return type(error).__name__
    if len(sentence) > WORDS:
        sentence = sentence[:WORDS].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return sentence


def not_a_number(value, where: str) -> str | None:
    """Where in a JSON value a number is NaN (which `json` writes and reads without a word; an
    infinity is a value some measurements take)."""
    if isinstance(value, float) and math.isnan(value):
        return where
    if isinstance(value, dict):
        for key, item in value.items():
            if found := not_a_number(item, f"{where}.{key}" if where else str(key)):
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := not_a_number(item, f"{where}[{index}]"):
                return found
    return None


def measurements(metrics: tuple[str, ...]) -> Callable[[dict], str | None]:
    """A check that a mapping holds every metric as {"value": number, "se": number}."""

    def check(found) -> str | None:
        if not isinstance(found, dict):
            return "is not a mapping of measurements"
        for metric in metrics:
            entry = found.get(metric)
            if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), int | float) for k in ("value", "se")
            ):
                return f"has no measurement of {metric}"
        return None

    return check


@dataclass(frozen=True)
class Json:
    """A JSON summary: its keys, optionally a check of some of their values, and no number NaN
    (null is a value)."""

    kind: str
    rule: str
    keys: tuple[str, ...]
    checks: dict = field(default_factory=dict)  # key -> (value -> problem or None)

    def check(self, path, found) -> None:
        if not isinstance(found, dict):
            raise damaged(path, self.rule, f"holds {type(found).__name__}, not a JSON object")
        missing = [key for key in self.keys if key not in found]
        if missing:
            raise damaged(path, self.rule, f"has no {', '.join(missing)}")
        if where := not_a_number(found, ""):
            raise damaged(path, self.rule, f"{where} is NaN")
        for key, check in self.checks.items():
            if problem := check(found[key]):
                raise damaged(path, self.rule, f"{key} {problem}")

    def read(self, path) -> dict:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{self.kind} {path} does not exist; {remake(path, self.rule)}")
        try:
            found = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise damaged(path, self.rule, f"is not valid JSON ({plainly(error)})") from None
        self.check(path, found)
        return found

    def write(self, path, content: dict) -> None:
        self.check(path, content)
        text = json.dumps(content, indent=2) + "\n"
        atomic_write(Path(path), lambda handle: handle.write(text.encode()))


@dataclass(frozen=True)
class Table:
    """A CSV with a header of known columns and numbers (or nothing) below it."""

    kind: str
    rule: str
    columns: tuple[str, ...]

    def read(self, path) -> list[dict]:
        path = Path(path)
        try:
            rows = list(csv.DictReader(io.StringIO(path.read_text())))
        except (UnicodeDecodeError, csv.Error) as error:
            raise damaged(path, self.rule, f"is not a readable CSV ({plainly(error)})") from None
        if not rows:
            raise damaged(path, self.rule, "has no rows")
        missing = [c for c in self.columns if c not in rows[0]]
        if missing:
            raise damaged(path, self.rule, f"has no column {', '.join(missing)}")
        for number, row in enumerate(rows, 2):
            if None in row.values() or None in row:
                raise damaged(path, self.rule, f"line {number} is cut short or has extra fields")
            for column in self.columns:
                text = row[column]
                try:
                    value = float(text) if text not in ("", None) else 0.0
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise damaged(path, self.rule, f"line {number}: {column} is {text!r}")
        return rows


def intact_zip(path, rule: str, kind: str) -> None:
    """A torch file is a zip archive with a checksum per member: cut short or altered, it fails
    here without torch being imported."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except READ_ERRORS as error:
        raise damaged(path, rule, f"is not a readable {kind} ({plainly(error)})") from None
    if bad is not None:
        raise damaged(path, rule, f"is not a readable {kind} (member {bad} is corrupt)")


def every_set(check: Callable[[dict], str | None]) -> Callable[[dict], str | None]:
    def each(found) -> str | None:
        if not isinstance(found, dict) or not found:
            return "is not a mapping of sets"
        return next((f"{name}: {p}" for name, m in found.items() if (p := check(m))), None)

    return each


def every_metric_judged(found) -> str | None:
    if not isinstance(found, dict):
        return "is not a mapping of metrics"
    for metric in ALWAYS_MEASURED:
        if not isinstance(found.get(metric), dict) or not isinstance(
            found[metric].get("sound"), list
        ):
            return f"has no judgement of {metric}"
    return None


def every_error_calibrated(found) -> str | None:
    if not isinstance(found, dict):
        return "is not a mapping of metrics"
    for metric in ALWAYS_MEASURED:
        if not isinstance(found.get(metric), dict) or not isinstance(
            found[metric].get("scale"), int | float
        ):
            return f"has no calibration of {metric}"
    return None


def every_draw_measured(found) -> str | None:
    """A model's draws: every metric but the classifier's value on each draw, numbers; the
    classifier's measurements; the first draw against the test images' subsets."""
    draws = found.get("draws") if isinstance(found, dict) else None
    if not isinstance(draws, list) or not draws:
        return "has no draws"
    cheap = [m for m in ALWAYS_MEASURED if m != "c2st_accuracy"]
    for index, draw in enumerate(draws):
        missing = [m for m in cheap if not isinstance(draw.get(m), int | float)]
        if missing:
            return f"draw {index} has no {missing[0]}"
    classifier = found.get("c2st_accuracy")
    if not isinstance(classifier, list) or not classifier:
        return "has no classifier test"
    if not all(
        isinstance(test, dict)
        and all(isinstance(test.get(k), int | float) for k in ("value", "se"))
        for test in classifier
    ):
        return "has a classifier test without its value and error"
    if not isinstance(found.get("reference"), dict):
        return "has no values against the test images' subsets"
    return None


SAMPLES = Arrays(
    "samples file",
    "sample",
    (
        Array("samples", "images", 4),
        Array("levels", "integers", 0),
        Array("seed", "integers", 0),
        Array("seconds", "floats", 0),
    ),
)
NLLS = Arrays("per-image NLL file", "examine", (Array("nll", "floats", 1, per_image=True),))
COMPLETIONS = Arrays(
    "completions file",
    "examine",
    (
        Array("nll", "floats", 1, per_image=True),
        Array("shown", "integers", 1),
        Array("originals", "images", 4),
        Array("completions", "images", 5),
        Array("hidden", "booleans", 1),
        Array("levels", "integers", 0),
    ),
)
LIKELIHOOD = Json(
    "likelihood summary",
    "examine",
    (
        "model",
        "exact",
        "test_images",
        "dims",
        "levels",
        "nll_nats",
        "nll_nats_se",
        "bits_per_dim",
        "bits_per_dim_se",
    ),
)
COMPLETION = Json(
    "completion summary",
    "examine",
    (
        "model",
        "likelihood",
        "hidden_rows",
        "hidden_pixels",
        "test_images",
        "conditional_nll_nats",
        "conditional_nll_nats_se",
    ),
)
QUALITY = Json(
    "sample-quality file",
    "quality",
    ("dataset", "images_per_set", "test_images", "test_pixels", "model"),
    {"model": every_draw_measured},
)
METRIC_CHECK = Json(
    "metric check",
    "metric_check",
    ("dataset", "images_per_set", "sets", "metrics", "dropped_mode", "prototypes"),
    {"sets": every_set(measurements(ALWAYS_MEASURED)), "metrics": every_metric_judged},
)
ERROR_CHECK = Json(
    "error-bar check",
    "error_check",
    ("dataset", "images_per_set", "level", "metrics", "draws"),
    {"metrics": every_error_calibrated},
)
VERDICTS = Json("verdicts", "report", ())
FEATURES_SUMMARY = Json(
    "features summary", "features", ("settings", "valid_reconstruction_mse", "contrastive")
)
CURVE = Table("training curve", "train", ("epoch", "train_nll", "valid_nll"))
