"""Checked downloads: stream to a temporary file, verify, then rename into place.

A file at the destination path is therefore always whole and verified. A file a user placed
there by hand (the way to continue without network) goes through the same checks; so does its
gzip-compressed copy (`NAME.gz`) where the reader takes gzip. A transfer that slows to a trickle
is cut off (less than `min_rate` bytes/s over `stall_window` seconds), as is one that outlasts
`deadline` seconds, and retried. Those limits and the number of attempts are the process's
download policy (`configure`, from the config's `download` settings); a call may override them.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from arbench.core.files import remove_stale_parts, temporary_path
from arbench.core.plan import DOWNLOAD_DEFAULTS, download_settings

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# The policy of this process: arbench.core.plan.DOWNLOAD_DEFAULTS until `configure` is called.
POLICY = dict(DOWNLOAD_DEFAULTS)
HTML_PREFIXES = (b"<!doctype html", b"<html", b"<head", b"<?xml")


class DownloadError(RuntimeError):
    """The file could not be fetched; the message says where to put it by hand."""


class DownloadStalled(OSError):
    """The transfer went on too slowly, or for too long."""


class VerificationError(ValueError):
    """The bytes are not what was expected; they are never left where they look complete."""


def configure(settings: dict | None) -> None:
    """Set this process's download policy from the config's `download` settings (checked)."""
    POLICY.update(download_settings(settings))


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(
    path: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    validate: Callable[[Path], None] | None = None,
    label: str | None = None,
) -> None:
    """Raise VerificationError if `path` is an HTML page, or fails a checksum or `validate`."""
    label = label or str(path)
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    if head.startswith(HTML_PREFIXES):
        raise VerificationError(
            f"{label} is an HTML page, not data (starts {head[:60]!r}): "
            "the server sent an error or login page"
        )
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_digest(path, algorithm)
            if actual != expected.lower():
                raise VerificationError(
                    f"{label} has {algorithm} {actual}, expected {expected}: "
                    "the file is corrupt or not the one configured"
                )
    if validate is not None:
        validate(path)


def _stream(
    url: str, tmp: Path, timeout: float, stall_window: float, min_rate: float, deadline: float
) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "arbench"})
    started = window_start = time.monotonic()
    window_bytes = 0
    with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
        expected = response.headers.get("Content-Length")
        expected = int(expected) if expected is not None else None
        received = 0
        with tqdm(
            total=expected, unit="B", unit_scale=True, desc=Path(url).name, disable=None
        ) as bar:
            # read1: whatever has arrived, so that a trickle still returns control here
            while chunk := response.read1(CHUNK):
                out.write(chunk)
                received += len(chunk)
                window_bytes += len(chunk)
                bar.update(len(chunk))
                now = time.monotonic()
                if now - started > deadline:
                    raise DownloadStalled(
                        f"the transfer took longer than {deadline:.0f} s "
                        f"({received} bytes received)"
                    )
                if now - window_start >= stall_window:
                    if window_bytes < min_rate * stall_window:
                        raise DownloadStalled(
                            f"the transfer stalled: {window_bytes} bytes in the last "
                            f"{now - window_start:.0f} s, under {min_rate:.0f} bytes/s"
                        )
                    window_start, window_bytes = now, 0
        if expected is not None and received != expected:
            raise http.client.IncompleteRead(b"", expected - received)


def _retryable(error: Exception) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code in (408, 429)
    return True


def fetch(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    validate: Callable[[Path], None] | None = None,
    retries: int | None = None,
    backoff: float = 2.0,
    timeout: float = 60.0,
    stall_window: float | None = None,
    min_rate: float | None = None,
    deadline: float | None = None,
    gzip_ok: bool = False,
) -> Path:
    """Return `dest`, downloading `url` to it first unless a verified copy is already there
    (with `gzip_ok`, `dest` with `.gz` added counts as one: the caller reads gzip).

    Transient failures (connection errors, truncated or stalled transfers, HTTP 5xx) are retried
    up to `retries` times with exponential backoff starting at `backoff` seconds. Content that
    fails verification is refused at once: it would fail the same way again. Limits left None
    are the process's `POLICY`.
    """
    retries = POLICY["retries"] if retries is None else retries
    stall_window = POLICY["stall_seconds"] if stall_window is None else stall_window
    min_rate = POLICY["min_rate"] if min_rate is None else min_rate
    deadline = 60 * POLICY["deadline_minutes"] if deadline is None else deadline
    dest = Path(dest)
    compressed = dest.with_name(dest.name + ".gz")
    placed = dest if dest.exists() or not gzip_ok or not compressed.exists() else compressed
    if placed.exists():
        try:
            verify_file(placed, sha256=sha256, md5=md5, validate=validate)
        except VerificationError as error:
            raise VerificationError(
                f"{error}. Delete {placed.resolve()} to download it again."
            ) from None
        return placed

    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(dest)
    tmp = temporary_path(dest)
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        log.info("downloading %s -> %s (attempt %d/%d)", url, dest, attempt, retries)
        try:
            _stream(url, tmp, timeout, stall_window, min_rate, deadline)
            verify_file(tmp, sha256=sha256, md5=md5, validate=validate, label=f"download of {url}")
            os.replace(tmp, dest)
            return dest
        except VerificationError:
            raise
        except (OSError, http.client.HTTPException) as error:
            last_error = error
            if not _retryable(error):
                break
            if attempt < retries:
                time.sleep(backoff * 2 ** (attempt - 1))
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(
        f"could not download {url} ({type(last_error).__name__}: {last_error}). "
        f"Without network, fetch it on another machine and place it at {dest.resolve()}"
        + (f" (or gzip-compressed at {compressed.resolve()})" if gzip_ok else "")
        + ", then run again; it will be verified there."
    )
