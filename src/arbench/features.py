"""The features stage: `python -m arbench.features --data D.npz --out F.pt` learns the feature
spaces of one dataset (`arbench.metrics.spaces`) on its training split and writes them, with a
summary of how well they learned beside (`F.json`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from arbench.core.cli import run_stage, stage_parser
from arbench.core.contracts import FEATURES_SUMMARY
from arbench.data.format import load_dataset
from arbench.metrics.spaces import train_features
from arbench.training import checkpoints


def build(data_path, out) -> dict:
    torch.use_deterministic_algorithms(True)
    saved = train_features(load_dataset(data_path))
    out = Path(out)
    checkpoints.save(saved, out)
    FEATURES_SUMMARY.write(out.with_suffix(".json"), saved["summary"])
    return saved["summary"]


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.features", "Learn a feature space on a dataset.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="features file (.pt); a .json summary beside")
    args = parser.parse_args(argv)
    return run_stage(
        f"features of {args.data}",
        lambda: build(args.data, args.out),
        inputs=(args.data,),
        outputs=(args.out, Path(args.out).with_suffix(".json")),
    )


if __name__ == "__main__":
    sys.exit(main())
