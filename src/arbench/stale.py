"""The stale stage: the files under `results/` that the current config does not make.

`python -m arbench.stale --config JSON [--remove]` (the workflow's `stale` and `remove_stale`
targets, which hand over the config in force) lists every file under `results/` that no job of
this config writes: results of datasets, models or training runs taken out of the config, their
logs and figures, damaged files set aside (`*.damaged`), and temporary files of killed writers;
with `--remove`, it removes them. The report of the current run never links to these.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from arbench.core.cli import json_object, run_stage, stage_parser
from arbench.core.plan import RESULTS, datasets_in_run, expected_files

log = logging.getLogger("arbench.stale")


def stale_files(results: Path, datasets: dict[str, list[str]]) -> list[Path]:
    """The files under `results` that a run of these datasets and training runs does not make."""
    expected = {Path(file).relative_to(RESULTS) for file in expected_files(datasets)}
    found = (p for p in results.rglob("*") if p.is_file())
    return sorted(p for p in found if p.relative_to(results) not in expected)


def stale(config: dict, remove: bool = False, results: Path = Path(RESULTS)) -> list[Path]:
    datasets, _ = datasets_in_run(config)
    files = stale_files(results, datasets) if results.is_dir() else []
    for file in files:
        if remove:
            file.unlink()
        print(f"{'removed ' if remove else ''}{file}")
    if not files:
        print(f"no stale files under {results}/")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.stale", "List (or remove) results the config does not make.")
    parser.add_argument(
        "--config",
        required=True,
        type=json_object,
        help="the workflow config in force (JSON, inline or a file)",
    )
    parser.add_argument("--remove", action="store_true", help="remove the files listed")
    args = parser.parse_args(argv)
    return run_stage("stale", lambda: stale(args.config, args.remove))


if __name__ == "__main__":
    sys.exit(main())
