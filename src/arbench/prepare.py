"""Build one dataset file from a source spec: `python -m arbench.prepare --spec ... --out ...`.

The spec is a JSON object (inline, or a .json or .yaml file) whose `source` names a builder of
`arbench.core.plan.SOURCES`; its other keys are checked against that source's settings and completed
with their defaults, and the completed spec is recorded in the sidecar. Downloads are cached
under `--resources`; the dataset file and its sidecar are written atomically to `--out`.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from arbench import __version__
from arbench.core.cli import json_object, run_stage, stage_parser
from arbench.core.plan import source_entry, source_spec
from arbench.data import download
from arbench.data.format import save_dataset

log = logging.getLogger("arbench.prepare")


def prepare(spec: dict, out: str | Path, resources: str | Path = "resources") -> Path:
    """Build the dataset `spec` describes and write it to `out` (plus its `.json` sidecar)."""
    spec = source_spec(spec)
    started = time.perf_counter()
    splits, levels, meta = source_entry(spec["source"]).load()(spec, Path(resources))
    meta = {
        **meta,
        "spec": spec,
        "created_by": f"arbench {__version__}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "seconds": round(time.perf_counter() - started, 3),
    }
    path = save_dataset(out, splits, levels, meta)
    counts = {name: len(array) for name, array in splits.items()}
    log.info("wrote %s: %s, shape %s, %d levels", path, counts, splits["train"].shape[1:], levels)
    return path


def read_spec(text: str) -> dict:
    """A spec given inline as JSON, or as the path of a JSON or YAML file."""
    if text.rstrip().endswith((".yaml", ".yml")) and Path(text).is_file():
        spec = yaml.safe_load(Path(text).read_text())
        if not isinstance(spec, dict):
            raise argparse.ArgumentTypeError(f"{text} must hold a mapping, got {spec!r}")
        return spec
    return json_object(text)


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.prepare", __doc__.splitlines()[0])
    parser.add_argument(
        "--spec", required=True, type=read_spec, help="JSON object, or a .json/.yaml file"
    )
    parser.add_argument("--out", required=True, help="dataset file to write (.npz)")
    parser.add_argument("--resources", default="resources", help="download cache folder")
    parser.add_argument(
        "--download",
        type=json_object,
        default={},
        help="download policy, a JSON object: stall_seconds, min_rate (bytes/s), "
        "deadline_minutes, retries (the config's `download` settings)",
    )
    args = parser.parse_args(argv)

    def work():
        download.configure(args.download)
        return prepare(args.spec, args.out, args.resources)

    out = Path(args.out)
    return run_stage(
        f"prepare {args.out}",
        work,
        inputs=(args.spec.get("path"),),  # a local archive or folder read in place
        outputs=(out, out.with_suffix(".json")),
    )


if __name__ == "__main__":
    sys.exit(main())
