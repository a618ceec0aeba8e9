"""Which results already on disk are damaged, checked before a run plans anything.

Every result file of a run is checked by the contract of its kind (`arbench.core.contracts`; a
dataset by its loader, `arbench.data.format`): a file truncated, overwritten or edited by hand is
found before any job reads it. A file seen good at its size and modification time is not read
again. A damaged file is set aside as `FILE.damaged`, so that it is made again.
"""

from __future__ import annotations

import json
from pathlib import Path

from arbench.core.contracts import (
    COMPLETION,
    COMPLETIONS,
    CURVE,
    ERROR_CHECK,
    FEATURES_SUMMARY,
    LIKELIHOOD,
    METRIC_CHECK,
    NLLS,
    QUALITY,
    SAMPLES,
    DamagedFile,
    intact_zip,
)
from arbench.core.files import atomic_write
from arbench.data.format import load_dataset

# What checks each kind of result file of `arbench.core.plan.LAYOUT` without torch (a model, a
# checkpoint and a feature file are torch files: their archive is checked; the stages that load
# them check the rest)
SCANS = {
    "samples": SAMPLES.read,
    "nll": NLLS.read,
    "metrics": LIKELIHOOD.read,
    "completion": COMPLETION.read,
    "completion_images": COMPLETIONS.read,
    "quality": QUALITY.read,
    "metric_check": METRIC_CHECK.read,
    "error_check": ERROR_CHECK.read,
    "features_summary": FEATURES_SUMMARY.read,
    "curve": CURVE.read,
    "model": lambda p: intact_zip(p, "train", "model file"),
    "features": lambda p: intact_zip(p, "features", "features file"),
}
DAMAGED_SUFFIX = ".damaged"


def scan(files: dict[str, str], record: Path) -> dict[str, DamagedFile]:
    """Check every existing file of `files` (path -> kind of `arbench.core.plan.LAYOUT`) by its
    contract; returns the damaged ones. A file found good is recorded in `record` with its size
    and modification time, and not read again while both stay the same."""
    checks = {**SCANS, "data": lambda p: load_dataset(p, verify=True), "sidecar": None}
    try:
        seen = json.loads(record.read_text())
    except (OSError, ValueError):
        seen = {}
    found = {}
    for file, kind in files.items():
        stat = Path(file).stat() if Path(file).exists() else None
        if stat is None or checks.get(kind) is None:
            continue
        stamp = [stat.st_size, stat.st_mtime_ns]
        if seen.get(file) == stamp:
            continue
        try:
            checks[kind](file)
        except DamagedFile as error:
            found[file] = error
            seen.pop(file, None)
        else:
            seen[file] = stamp
    text = json.dumps(seen, sort_keys=True)
    atomic_write(record, lambda handle: handle.write(text.encode()))
    return found


def set_aside(file: str) -> Path:
    """Move a damaged file out of the way (kept for a look), so that it is made again."""
    aside = Path(file).with_name(Path(file).name + DAMAGED_SUFFIX)
    Path(file).replace(aside)
    return aside
