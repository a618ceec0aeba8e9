"""Writing result files: whole or not at all, readable as the umask allows, clear when it fails.

Every file a stage writes goes through `atomic_write`: the bytes go to a temporary file beside
the target, created with mode 0666 less the umask (what a plain `open` gives, so collaborators
on a shared cluster can read `results/`), and are renamed over the target only once complete.
A writer that fails or is stopped removes its temporary file; one killed outright (SIGKILL,
a node failure) leaves it behind, and the next writer of the same target removes it.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path

PART_SUFFIX = ".part"
REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this process may write (a file-size limit)",
    errno.EACCES: "permission denied",
    errno.EROFS: "the filesystem is read-only",
}


class OutputWriteError(OSError):
    """A result file could not be written; nothing half-written was left in its place."""


def temporary_path(path: Path) -> Path:
    """A fresh name beside `path` that records the writing process."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{PART_SUFFIX}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_parts(path: Path) -> list[Path]:
    """Remove temporary files of `path` left by writers that no longer run."""
    removed = []
    for part in path.parent.glob(f".{path.name}.*{PART_SUFFIX}"):
        pid = part.name[len(path.name) + 2 :].split(".")[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        part.unlink(missing_ok=True)
        removed.append(part)
    return removed


def is_write_failure(error: BaseException) -> bool:
    """An error of the filesystem under a write, as Python or PyTorch's file writer reports it."""
    if isinstance(error, OSError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "PytorchStreamWriter" in text or "inline_container" in text
    )


def describe_write_failure(path: Path, error: BaseException) -> str:
    reason = REASONS.get(getattr(error, "errno", None)) or str(error).strip().splitlines()[0]
    try:
        free = shutil.disk_usage(path.parent).free
        space = f"; {free / 2**20:,.1f} MiB free on its filesystem"
    except OSError:
        space = ""
    return (
        f"could not write {path}: {reason}{space}. Nothing half-written was left there; "
        "make room (or fix the cause) and run the job again."
    )


class _RecordingHandle:
    """A file handle that remembers the OSError of a failed write: PyTorch's writer turns it
    into 'unexpected pos', which no longer says that the disk was full."""

    def __init__(self, handle):
        self._handle = handle
        self.failure: OSError | None = None

    def write(self, data):
        try:
            return self._handle.write(data)
        except OSError as error:
            self.failure = error
            raise

    def __getattr__(self, name):
        return getattr(self._handle, name)


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call `write(handle)` on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    tmp = temporary_path(path)
    handle = None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as raw:
            handle = _RecordingHandle(raw)
            write(handle)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if is_write_failure(error) and not isinstance(error, OutputWriteError):
            cause = handle.failure if handle is not None and handle.failure else error
            raise OutputWriteError(describe_write_failure(path, cause)) from error
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(Path(path), lambda handle: handle.write(text.encode()))


def move_folder_into_place(folder: Path, dest: Path) -> None:
    """Give a folder made by `tempfile.mkdtemp` (mode 0700) the umask's permissions, then
    rename it to `dest`."""
    umask = os.umask(0)
    os.umask(umask)
    for root, dirs, _ in os.walk(folder):
        for name in dirs:
            os.chmod(Path(root) / name, 0o777 & ~umask)
    os.chmod(folder, 0o777 & ~umask)
    os.replace(folder, dest)
