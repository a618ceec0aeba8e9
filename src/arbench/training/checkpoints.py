"""Model files and training checkpoints: written atomically, read without running foreign code.

Both are plain dicts of tensors and numbers, loaded with `torch.load(..., weights_only=True)`,
which refuses a pickle that would run code; such a file, or a truncated one, is reported by
name with what to do. A model file records the version of its model's code (`version` of the
model class, raised whenever what a file holds changes meaning): a file of another version is
refused, naming both. A file of a user's model names its class (`package.module:Class`), which
is imported to rebuild it: loading needs that package installed and says so when it is not (the
file itself still holds only tensors and plain values). `resolve_device` turns the `device`
setting into a torch device.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from arbench.core.contracts import DamagedFile, plainly, remake
from arbench.core.files import atomic_write
from arbench.core.plan import USER, SettingsError, file_entry


class CheckpointError(DamagedFile):
    """A file that should hold a model or checkpoint does not hold one arbench wrote."""


class IncompatibleModel(CheckpointError):
    """A model file written by another version of its model's code."""


class UserClassMissing(CheckpointError):
    """A model file of a user's class that cannot be imported (or used) here."""


def save(obj: dict, path: str | Path) -> None:
    atomic_write(Path(path), lambda handle: torch.save(obj, handle))


def refused(path, what: str, problem: str, remedy: str) -> CheckpointError:
    return CheckpointError(f"{path}: {problem}; it was not used. {remedy}", problem)


def load(path: str | Path, what: str = "model file", remedy: str | None = None, rule="train"):
    """The dict a torch file written by arbench holds; `remedy` says what to do when it cannot
    be used (by default: remake it with the rule that writes it)."""
    path = Path(path)
    remedy = remedy or remake(path, rule).capitalize() + "."
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist. {remedy}")
    if not path.is_file():  # a FIFO or a device: reading it could wait forever
        raise refused(path, what, f"not a regular file, so not a {what}", remedy)
    if not zipfile.is_zipfile(path):  # a torch file is a zip archive
        with open(path, "rb") as handle:
            cut = handle.read(4) == b"PK\x03\x04"
        problem = "its zip archive is cut short or damaged" if cut else "not a torch file"
        problem = f"not a {what} that arbench wrote, or damaged ({problem})"
        raise refused(path, what, problem, remedy)
    try:
        with warnings.catch_warnings():  # torch's advice on pickle protocols is not ours to give
            warnings.simplefilter("ignore")
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own text goes on to suggest loading it with weights_only=False: never here
        raise refused(
            path,
            what,
            f"not a {what} that arbench wrote: it holds Python objects beyond tensors and plain "
            "values, which loading could run as code",
            remedy,
        ) from None
    except Exception as error:
        problem = f"not a {what} that arbench wrote, or damaged ({plainly(error)})"
        raise refused(path, what, problem, remedy) from None
    if not isinstance(saved, dict):
        raise refused(path, what, f"holds a {type(saved).__name__}, not an arbench {what}", remedy)
    return saved


MODEL_KEYS = ("model", "shape", "levels", "config", "state")


def load_model(path: str | Path):
    """A trained model from a file written by the train stage, refused (naming both versions)
    when its model's code has changed what such a file means since it was written."""
    saved = load(path, "model file")
    remedy = remake(path, "train").capitalize() + "."
    missing = [key for key in MODEL_KEYS if key not in saved]
    if missing:
        raise refused(path, "model file", f"has no {', '.join(missing)}", remedy)
    try:
        entry = file_entry(saved)
        cls = entry.load()
    except SettingsError as error:
        if "class" in saved:
            problem = (
                f"it holds model {saved['model']} of the class {saved['class']}, which cannot be "
                f"used here ({error})"
            )
            raise UserClassMissing(
                f"{path}: {problem}; it was not used. Install the package that defines "
                f"{saved['class']} in this environment (or put it on PYTHONPATH) to load it.",
                problem,
            ) from None
        raise refused(path, "model file", str(error), remedy) from None
    written = saved.get("version", 0)
    if written != cls.version:
        # arbench's own code, or the user's class the file names
        code = entry.class_path if entry.origin == USER else "arbench"
        raise IncompatibleModel(
            f"{path} was written by version {written} of {code}'s {cls.name} code; this "
            f"{code}'s {cls.name} is version {cls.version}, which reads its files differently. "
            f"Train it again with this {code}, or load it with the {code} that wrote it"
            f"{' (commit ' + saved['commit'] + ')' if saved.get('commit') else ''}.",
            f"version {written} of {cls.name}, not {cls.version}",
        )
    try:
        return cls.from_checkpoint(saved)
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        problem = f"its {cls.name} state does not fit the model ({plainly(error)})"
        raise refused(path, "model file", problem, remedy) from None


def check_fits(model, model_path, data, data_path) -> None:
    """Refuse a model trained on images of another shape or number of levels than `data`'s."""
    if tuple(model.shape) != data.shape or model.levels != data.levels:
        raise ValueError(
            f"{model_path} models images of shape {tuple(model.shape)} on {model.levels} "
            f"levels, but {data_path} holds {data.shape} on {data.levels}: the model was trained "
            "on other data; train it again on this dataset"
        )


def summary(path: str | Path) -> dict:
    """What the train stage recorded about the model in `path`."""
    return load(path).get("summary", {})


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise SettingsError(
            f"device {choice!r} was asked for, but CUDA is not available here; "
            "set device: auto (or cpu) in the config"
        )
    return torch.device(choice)
