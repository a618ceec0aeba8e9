"""The dataset file every later stage reads: one `.npz` of uint8 splits plus a JSON sidecar.

`train`, `valid` and `test` are uint8 arrays shaped (N, C, H, W) with values in
`0..levels-1`. Where the source knows what each image shows (a digit, a game), `train_labels`,
`valid_labels` and `test_labels` hold one integer per image and the sidecar's `label_names`
name them. The sidecar (same stem, `.json`) records where the data came from and how it was
made, and how many images of each split are exact copies of a training image or of another
image of their own split, so a result can always be traced back to its bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arbench.core.contracts import READ_ERRORS, DamagedFile, plainly, remake
from arbench.core.files import atomic_write

SPLITS = ("train", "valid", "test")
LABELS = {name: f"{name}_labels" for name in SPLITS}
FORMAT_VERSION = 2


class DatasetFormatError(DamagedFile):
    """A dataset file or its sidecar does not follow the contract."""


def damaged_dataset(path, problem: str) -> DatasetFormatError:
    return DatasetFormatError(f"{path}: {problem}; {remake(path, 'prepare')}", problem)


@dataclass(frozen=True)
class Dataset:
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    levels: int
    meta: dict = field(default_factory=dict)
    labels: dict[str, np.ndarray] | None = None  # split -> one integer per image, if known

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.shape[1:])

    @property
    def dims(self) -> int:
        return int(np.prod(self.shape))

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)


def content_sha256(array: np.ndarray) -> str:
    """sha256 of an array's values as C-ordered uint8: independent of the file it came from."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).hexdigest()


def sidecar_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


def validate_splits(splits: dict[str, np.ndarray], levels: int, origin: str) -> None:
    """Raise DatasetFormatError unless `splits` holds three non-empty, consistent uint8 arrays."""
    if not isinstance(levels, int | np.integer) or not 2 <= levels <= 256:
        raise DatasetFormatError(f"{origin}: levels must be an integer in 2..256, got {levels!r}")
    shapes = set()
    for name in SPLITS:
        if name not in splits:
            raise DatasetFormatError(f"{origin}: missing split {name!r}")
        array = splits[name]
        if array.dtype != np.uint8 or array.ndim != 4:
            raise DatasetFormatError(
                f"{origin}: split {name!r} must be uint8 (N, C, H, W), "
                f"got {array.dtype} with shape {array.shape}"
            )
        if len(array) == 0:
            raise DatasetFormatError(f"{origin}: split {name!r} is empty")
        if array.max() >= levels:
            raise DatasetFormatError(
                f"{origin}: split {name!r} has value {int(array.max())}, outside 0..{levels - 1}"
            )
        shapes.add(array.shape[1:])
    if len(shapes) != 1:
        raise DatasetFormatError(f"{origin}: splits disagree on image shape: {sorted(shapes)}")
    present = [key for key in LABELS.values() if key in splits]
    if present and len(present) != len(SPLITS):
        raise DatasetFormatError(f"{origin}: labels for some splits only ({present})")
    for name, key in LABELS.items():
        if key in splits and splits[key].shape != (len(splits[name]),):
            raise DatasetFormatError(
                f"{origin}: {key} has shape {splits[key].shape}, expected one label per image "
                f"({len(splits[name])})"
            )


def duplicate_counts(splits: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Per split: images that are exact copies of a training image (for valid and test), and
    images that repeat another image of their own split."""
    train = {row.tobytes() for row in splits["train"].reshape(len(splits["train"]), -1)}
    counts = {}
    for name in SPLITS:
        rows = [row.tobytes() for row in splits[name].reshape(len(splits[name]), -1)]
        counts[name] = {"repeated_in_split": len(rows) - len(set(rows))}
        if name != "train":
            counts[name]["copies_of_train"] = sum(row in train for row in rows)
    return counts


def save_dataset(
    path: str | os.PathLike, splits: dict[str, np.ndarray], levels: int, meta: dict
) -> Path:
    """Write the `.npz` and its sidecar atomically; the `.npz` appears last, once both are whole.

    The sidecar gets counts, shape, levels and the content checksum of each split added to `meta`.
    """
    path = Path(path)
    validate_splits(splits, levels, str(path))
    sidecar = {
        "format_version": FORMAT_VERSION,
        **meta,
        "levels": int(levels),
        "shape": list(splits["train"].shape[1:]),
        "counts": {name: len(splits[name]) for name in SPLITS},
        "content_sha256": {name: content_sha256(splits[name]) for name in SPLITS},
        "duplicates": duplicate_counts(splits),
    }
    path.unlink(missing_ok=True)
    atomic_write(
        sidecar_path(path),
        lambda handle: handle.write(json.dumps(sidecar, indent=2, sort_keys=True).encode() + b"\n"),
    )
    arrays = {name: splits[name] for name in (*SPLITS, *LABELS.values()) if name in splits}
    atomic_write(path, lambda handle: np.savez(handle, levels=np.int64(levels), **arrays))
    return path


def load_dataset(path: str | os.PathLike, *, verify: bool = True) -> Dataset:
    """Read a dataset file, checked by its contract: the file opens, its splits are uint8
    (N, C, H, W) on `0..levels-1` and agree with the sidecar, and (with `verify`, the default)
    each split's content checksum is the one the sidecar records."""
    path = Path(path)
    meta_path = sidecar_path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file {path} does not exist; {remake(path, 'prepare')}")
    if not meta_path.exists():
        raise damaged_dataset(path, f"has no sidecar {meta_path}")
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = f"its sidecar is not valid JSON ({plainly(error)})"
        raise damaged_dataset(path, problem) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("content_sha256"), dict):
        raise damaged_dataset(path, f"its sidecar {meta_path} records no content checksums")
    try:
        with np.load(path, allow_pickle=False) as archive:
            wanted = (*SPLITS, *LABELS.values())
            splits = {name: archive[name] for name in wanted if name in archive.files}
            levels = int(archive["levels"]) if "levels" in archive.files else None
    except READ_ERRORS as error:
        raise damaged_dataset(path, f"is not a readable .npz ({plainly(error)})") from None
    if levels is None or levels != meta.get("levels"):
        raise damaged_dataset(
            path, f"levels {levels} disagree with its sidecar's ({meta.get('levels')})"
        )
    try:
        validate_splits(splits, levels, str(path))
    except DatasetFormatError as error:
        raise damaged_dataset(path, error.problem.removeprefix(f"{path}: ")) from None
    if verify:
        for name in SPLITS:
            actual = content_sha256(splits[name])
            if actual != meta["content_sha256"].get(name):
                raise damaged_dataset(
                    path,
                    f"split {name!r} has content sha256 {actual}, its sidecar records "
                    f"{meta['content_sha256'].get(name)}",
                )
    labels = {name: splits.pop(key) for name, key in LABELS.items() if key in splits} or None
    return Dataset(levels=levels, meta=meta, labels=labels, **splits)
