"""Anime faces: an archive of face images (downloaded or local) or a local folder of images.

Archives are extracted safely (no absolute paths, no `..`, no links) into a temporary folder that
is renamed into place only when whole. Every image is decoded with Pillow, converted to RGB,
centre-cropped and resized; files that are not images are counted and skipped.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from arbench.data.download import VerificationError, fetch, file_digest, verify_file
from arbench.data.pixels import centre_crop_resize, quantize, to_chw
from arbench.data.splits import split_items

log = logging.getLogger(__name__)

DEFAULTS = {"size": [32, 32], "levels": 256, "split": [0.8, 0.1, 0.1], "seed": 0}


class UnsafeArchiveError(VerificationError):
    pass


def _check_member(name: str, is_link: bool, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise UnsafeArchiveError(f"{archive}: entry {name!r} has an absolute path; refused")
    if ".." in path.parts:
        raise UnsafeArchiveError(
            f"{archive}: entry {name!r} escapes the extraction folder; refused"
        )
    if is_link:
        raise UnsafeArchiveError(f"{archive}: entry {name!r} is a link; refused")


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract a zip or tar archive into `dest`, checking every entry before writing any."""
    archive = Path(archive)
    if dest.exists():
        return dest
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                for info in members:
                    is_link = stat.S_ISLNK(info.external_attr >> 16)
                    _check_member(info.filename, is_link, archive)
                if not any(not info.is_dir() for info in members):
                    raise VerificationError(f"{archive} is an empty archive")
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for info in members:
                    _check_member(info.name, info.issym() or info.islnk(), archive)
                    if not (info.isfile() or info.isdir()):
                        raise UnsafeArchiveError(f"{archive}: entry {info.name!r} is not a file")
                if not any(info.isfile() for info in members):
                    raise VerificationError(f"{archive} is an empty archive")
                tf.extractall(tmp, filter="data")
        else:
            raise VerificationError(f"{archive} is neither a zip nor a tar archive")
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def read_image_folder(folder: Path, size, limit: int | None = None) -> tuple[np.ndarray, dict]:
    """Decode every image under `folder` (sorted by path) to uint8 RGB (N, 3, H, W).

    Files that are not images or fail to decode are skipped and counted.
    """
    paths = sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))
    images, skipped, modes = [], [], {}
    for path in tqdm(paths, desc="decoding images", unit="img", disable=None):
        if limit is not None and len(images) >= limit:
            break
        try:
            with Image.open(path) as image:
                image.load()
                modes[image.mode] = modes.get(image.mode, 0) + 1
                # Palette images may carry transparency that only converts cleanly via RGBA.
                rgb = (image.convert("RGBA") if image.mode in ("P", "PA") else image).convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            skipped.append(str(path.relative_to(folder)))
            continue
        images.append(to_chw(centre_crop_resize(rgb, tuple(size))))
    if skipped:
        log.warning(
            "skipped %d files that are not decodable images, e.g. %s", len(skipped), skipped[:3]
        )
    if not images:
        raise VerificationError(
            f"{folder} holds no decodable images ({len(paths)} files, {len(skipped)} skipped)"
        )
    report = {
        "decoded": len(images),
        "skipped": len(skipped),
        "skipped_examples": skipped[:10],
        "modes": modes,
    }
    return np.stack(images), report


def _locate(spec: dict, resources: Path) -> tuple[Path, dict]:
    """The folder of images the spec names, downloading and extracting as needed."""
    if spec.get("path"):
        source = Path(spec["path"]).expanduser()
        if not source.exists():
            raise FileNotFoundError(f"anime faces path {source} does not exist")
        if source.is_dir():
            return source, {"path": str(source)}
        if spec.get("sha256"):
            verify_file(source, sha256=spec["sha256"])
        archive, files = source, {"path": str(source), "sha256": file_digest(source)}
    elif spec.get("url"):
        name = Path(spec["url"].split("?")[0]).name or "anime_faces.zip"
        archive = fetch(spec["url"], resources / "anime_faces" / name, sha256=spec.get("sha256"))
        files = {"url": spec["url"], "sha256": file_digest(archive)}
        if not spec.get("sha256"):
            log.warning("no sha256 configured for %s; recording %s", spec["url"], files["sha256"])
    else:
        raise ValueError("anime faces need either `path` (folder or archive) or `url`")
    folder = resources / "anime_faces" / f"extracted-{files['sha256'][:16]}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    return extract_archive(archive, folder), files


def anime_faces(spec: dict, resources: Path) -> tuple[dict, int, dict]:
    spec = {**DEFAULTS, **spec}
    folder, files = _locate(spec, resources)
    images, report = read_image_folder(folder, spec["size"], spec.get("max_images"))
    levels = int(spec["levels"])
    images = quantize(images, levels)
    index = split_items(len(images), spec["split"], spec["seed"])
    splits = {name: images[idx] for name, idx in index.items()}
    return splits, levels, {"source": "anime_faces", "files": {"archive": files}, "images": report}
