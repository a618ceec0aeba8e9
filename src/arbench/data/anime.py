"""Anime faces: an archive of face images (downloaded or local) or a local folder of images.

Archives are extracted safely (no absolute paths, no `..`, no links) into a temporary folder that
is renamed into place only when whole; with `folder` (a glob such as `*/faces`) only the entries
under that folder are extracted and read. `content_sha256` checks what was read: the names and
bytes of its files, which stay the same when an archive is regenerated (GitHub's archives are
not byte-stable) and whatever decoder is installed. Every image is decoded with Pillow,
converted to RGB, centre-cropped and resized; files that are not images are counted and skipped.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from arbench.core.files import move_folder_into_place
from arbench.core.plan import source_spec
from arbench.data.download import VerificationError, fetch, file_digest, verify_file
from arbench.data.pixels import centre_crop_resize, quantize, to_chw, to_rgb
from arbench.data.splits import split_items

log = logging.getLogger(__name__)


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


def _inside(folder: str | None) -> str:
    return f" under {folder!r}" if folder else ""


def under(name: str, folder: str | None) -> bool:
    """Whether archive entry `name` lies inside a folder matching the glob `folder`."""
    if folder is None:
        return True
    parts, pattern = PurePosixPath(name).parts, PurePosixPath(folder).parts
    return len(parts) > len(pattern) and fnmatch.fnmatchcase(
        "/".join(parts[: len(pattern)]), "/".join(pattern)
    )


def extract_archive(archive: Path, dest: Path, folder: str | None = None) -> Path:
    """Extract a zip or tar archive into `dest`, checking every entry before writing any; with
    `folder`, only the entries under it."""
    archive = Path(archive)
    if dest.exists():
        return dest
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = [info for info in zf.infolist() if under(info.filename, folder)]
                for info in members:
                    is_link = stat.S_ISLNK(info.external_attr >> 16)
                    _check_member(info.filename, is_link, archive)
                if not any(not info.is_dir() for info in members):
                    raise VerificationError(f"{archive} holds no files{_inside(folder)}")
                zf.extractall(tmp, members)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = [info for info in tf.getmembers() if under(info.name, folder)]
                for info in members:
                    _check_member(info.name, info.issym() or info.islnk(), archive)
                    if not (info.isfile() or info.isdir()):
                        raise UnsafeArchiveError(f"{archive}: entry {info.name!r} is not a file")
                if not any(info.isfile() for info in members):
                    raise VerificationError(f"{archive} holds no files{_inside(folder)}")
                tf.extractall(tmp, members, filter="data")
        else:
            raise VerificationError(f"{archive} is neither a zip nor a tar archive")
        move_folder_into_place(tmp, dest)
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
                rgb = to_rgb(image)
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


def files_sha256(folder: Path) -> str:
    """sha256 over the relative name and the bytes' sha256 of every file under `folder`."""
    digest = hashlib.sha256()
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    for name, path in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _select(root: Path, folder: str | None, origin: str) -> Path:
    """The one folder under `root` matching the glob `folder` (`root` itself without one)."""
    if folder is None:
        return root
    found = sorted(p for p in root.glob(folder) if p.is_dir())
    if len(found) != 1:
        raise VerificationError(
            f"{origin}: folder {folder!r} matches {len(found)} folders "
            f"({', '.join(str(p.relative_to(root)) for p in found[:3]) or 'none'}); it must "
            "match exactly one"
        )
    return found[0]


def _locate(spec: dict, resources: Path) -> tuple[Path, dict]:
    """The folder of images the spec names, downloading and extracting as needed."""
    folder = spec["folder"]
    if spec["path"]:
        source = Path(spec["path"]).expanduser()
        if not source.exists():
            raise FileNotFoundError(
                f"anime faces path {source} does not exist: set `path` to a folder or archive "
                "of face images, or use `url`"
            )
        if source.is_dir():
            return _select(source, folder, str(source)), {"path": str(source)}
        if spec["sha256"]:
            verify_file(source, sha256=spec["sha256"])
        archive, files = source, {"path": str(source), "sha256": file_digest(source)}
    elif spec["url"]:
        name = Path(spec["url"].split("?")[0]).name or "anime_faces.zip"
        archive = fetch(spec["url"], resources / "anime_faces" / name, sha256=spec["sha256"])
        files = {"url": spec["url"], "sha256": file_digest(archive)}
        if not spec["sha256"] and not spec["content_sha256"]:
            log.warning("no checksum configured for %s; recording %s", spec["url"], files["sha256"])
    else:
        raise ValueError("anime faces need either `path` (folder or archive) or `url`")
    selection = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    extracted = resources / "anime_faces" / f"extracted-{files['sha256'][:16]}-{selection}"
    extracted.parent.mkdir(parents=True, exist_ok=True)
    return _select(extract_archive(archive, extracted, folder), folder, str(archive)), files


def anime_faces(spec: dict, resources: Path) -> tuple[dict, int, dict]:
    spec = source_spec({**spec, "source": "anime_faces"})
    folder, files = _locate(spec, resources)
    content = files_sha256(folder)
    if spec["content_sha256"] and content != spec["content_sha256"]:
        raise VerificationError(
            f"{folder}: the files read have content sha256 {content}, expected "
            f"{spec['content_sha256']}: not the configured faces (a different archive or "
            "folder); check `url`/`path` and `folder`"
        )
    files["content_sha256"] = content
    images, report = read_image_folder(folder, spec["size"], spec["max_images"])
    levels = int(spec["levels"])
    images = quantize(images, levels)
    index = split_items(len(images), spec["split"], spec["seed"])
    splits = {name: images[idx] for name, idx in index.items()}
    return splits, levels, {"source": "anime_faces", "files": {"archive": files}, "images": report}


def prepare_image(image: Image.Image, spec: dict, game: str | None = None) -> np.ndarray:
    """One image as the faces of this spec are: RGB, centre-cropped and resized, quantized."""
    resized = centre_crop_resize(to_rgb(image), tuple(spec["size"]))
    return quantize(to_chw(resized)[None], spec["levels"])[0]
