"""The features stage: `python -m arbench.features --data D.npz --bins 100 --out F.pt` learns the
feature spaces of one dataset (`arbench.metrics.spaces`) on its training split, and beside them
the instruments that see modes: the k-means bins of the training pixels that NDB counts in
(`arbench.metrics.bins`) and, where labelled images exist, a label classifier for the class
histogram (`arbench.metrics.classes`; `--labelled-test DIR`: the canonical MNIST test files its
accuracy is measured on where the dataset has no test labels). It writes them, with a summary of
how well they learned beside (`F.json`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from arbench.core.cli import positive_int, run_stage, stage_parser
from arbench.core.contracts import FEATURES_SUMMARY
from arbench.data.format import load_dataset
from arbench.metrics.bins import Bins
from arbench.metrics.classes import train_classifier
from arbench.metrics.spaces import flat, train_features
from arbench.training import checkpoints


def build(data_path, out, bins: int, labelled_test=None, settings: dict | None = None) -> dict:
    """Learn and write the features file of a dataset (`settings`: the learned encoder's, as
    `arbench.metrics.spaces.train_features` takes them)."""
    torch.use_deterministic_algorithms(True)
    data = load_dataset(data_path)
    saved = train_features(data, settings)
    fitted = Bins.fit(flat(data.train, data.levels), bins)
    saved["bins"] = {
        "centres": torch.from_numpy(fitted.centres),
        "train_counts": torch.from_numpy(fitted.train_counts),
    }
    saved["summary"]["ndb_bins"] = len(fitted.centres)
    saved["classes"] = train_classifier(data, labelled_test)
    saved["summary"]["label_classifier"] = saved["classes"] and saved["classes"]["summary"]
    out = Path(out)
    checkpoints.save(saved, out)
    FEATURES_SUMMARY.write(out.with_suffix(".json"), saved["summary"])
    return saved["summary"]


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.features", "Learn a feature space on a dataset.")
    parser.add_argument("--data", required=True)
    parser.add_argument(
        "--bins", type=positive_int, default=100, help="k-means bins of the training pixels (NDB)"
    )
    parser.add_argument(
        "--labelled-test",
        help="a folder with the canonical MNIST test files (IDX): the label classifier's "
        "accuracy is measured on them where the dataset has no test labels",
    )
    parser.add_argument("--out", required=True, help="features file (.pt); a .json summary beside")
    args = parser.parse_args(argv)
    return run_stage(
        f"features of {args.data}",
        lambda: build(args.data, args.out, args.bins, args.labelled_test),
        inputs=(args.data,),
        outputs=(args.out, Path(args.out).with_suffix(".json")),
    )


if __name__ == "__main__":
    sys.exit(main())
