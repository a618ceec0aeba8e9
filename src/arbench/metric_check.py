"""The metric check stage: every metric measured on sets whose ranking is known, judged.

`python -m arbench.metric_check --data D.npz --features F.pt --out C.json` measures the known-answer
sets of `arbench.metrics.known_answers` exactly as the quality stage measures a model's samples (and
the classifier test once more with a second classifier seed), says which metrics ranked them
correctly for its part of the hypothesis (only those are used there), and by how many standard
errors each separates its part's defining set from real images (what chooses the primary metric
and its margin, `arbench.metrics.known_answers`). The report judges them again with the errors
the error-bar check calibrated.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from arbench.core.cli import positive_int, run_stage, stage_parser
from arbench.core.contracts import METRIC_CHECK
from arbench.data.format import load_dataset
from arbench.metrics.known_answers import (
    COPIES,
    PROTOTYPES,
    REAL,
    in_standard_errors,
    judge_all,
    known_sets,
)
from arbench.metrics.measurement import Reference, measure, set_size, summary_line
from arbench.metrics.spaces import FeatureSpaces

log = logging.getLogger("arbench.metric_check")


def check(data_path, features_path, n: int, out, mixture_components: int = PROTOTYPES) -> dict:
    """Measure the reference sets whose ranking is known, and judge every metric by them."""
    data = load_dataset(data_path)
    spaces = FeatureSpaces.load(features_path)
    reference = Reference.of(data, spaces)
    size = set_size(n, data)
    sets, made = known_sets(data, size, mixture_components)
    measured = {}
    for name, images in sets.items():
        measured[name] = measure(images, reference, classifier_seeds=(0, 1))
        measured[name].pop("nearest_train_index")
        log.info("check set %s: %s", name, summary_line(measured[name]))
    copies, reals = measured[COPIES], measured[REAL]
    result = {
        "dataset": Path(data_path).stem,
        "images_per_set": size,
        "test_images": len(reference.test),
        **made,
        "features": spaces.summary,
        "sets": measured,
        "metrics": judge_all(measured),
        "copies_flagged": bool(
            copies["copied_fraction"] == 1.0
            and copies["novelty"]["value"] == 0.0
            and reals["novelty"]["value"] > 0
        ),
    }
    METRIC_CHECK.write(out, result)
    for metric, judged in result["metrics"].items():
        log.info(
            "%s (%s): %s; separates the part's defining set from real by %s",
            metric,
            judged["part"],
            "ranks the known sets right" if judged["sound"] else "fails a check",
            in_standard_errors(judged["separation"]["standard_errors"]),
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.metric_check", "Sample-quality metrics on known-answer sets.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--features", required=True, help="the dataset's features file")
    parser.add_argument(
        "--n",
        type=positive_int,
        default=500,
        help="images a set (at most the valid images)",
    )
    parser.add_argument(
        "--mixture-components",
        type=positive_int,
        default=PROTOTYPES,
        help="components of the dataset's largest mixture: the noisy prototypes are as many",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_stage(
        f"metric check on {args.data}",
        lambda: check(args.data, args.features, args.n, args.out, args.mixture_components),
        inputs=(args.data, args.features),
        outputs=(args.out,),
    )


if __name__ == "__main__":
    sys.exit(main())
