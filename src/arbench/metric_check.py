"""The metric check stage: every metric measured on sets whose ranking is known, judged.

`python -m arbench.metric_check --data D.npz --features F.pt --out C.json` measures the known-answer
sets of `arbench.known_answers` exactly as the quality stage measures a model's samples, says which
metrics ranked them correctly (only those vote in the verdict), and by how many standard errors
the single Gaussian trails real images on each (the resolving power of the set size).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from arbench.cli import positive_int, run_stage, stage_parser
from arbench.contracts import METRIC_CHECK
from arbench.data.format import load_dataset
from arbench.features import FeatureSpaces
from arbench.known_answers import (
    BLURRED,
    COPIES,
    DROPPED,
    GAUSSIAN,
    MATCHED,
    NOISE,
    NOISY,
    PROTOTYPE,
    PROTOTYPES,
    REAL,
    blurred,
    gaussian_images,
    judge,
    mode_dropped,
    noisy,
    prototypes,
    resolves,
    resolving_power,
)
from arbench.plan import METRICS
from arbench.quality import Reference, measure, set_size, summary_line

log = logging.getLogger("arbench.metric_check")


def check(data_path, features_path, n: int, out) -> dict:
    """Measure the reference sets whose ranking is known, and judge every metric by them."""
    data = load_dataset(data_path)
    spaces = FeatureSpaces.load(features_path)
    reference = Reference.of(data, spaces)
    size = set_size(n, data)
    rng = np.random.default_rng(0)
    real = data.valid[np.sort(rng.choice(len(data.valid), size, replace=False))]
    dropped, matched, dropped_mode = mode_dropped(data, spaces, size)
    prototype_set, distinct = prototypes(data, real)
    sets = {
        REAL: real,
        GAUSSIAN: gaussian_images(data, size),
        # blurring binary images is a majority filter that cleans them: not known to be worse
        **({BLURRED: blurred(real)} if data.levels > 2 else {}),
        **{
            name: noisy(real, f, data.levels, i)
            for i, (name, f) in enumerate(zip(NOISY, NOISE, strict=True))
        },
        DROPPED: dropped,
        MATCHED: matched,
        PROTOTYPE: prototype_set,
        COPIES: data.train[rng.choice(len(data.train), size, replace=False)],
    }
    measured = {}
    for name, images in sets.items():
        measured[name] = measure(images, reference)
        measured[name].pop("nearest_train_index")
        log.info("check set %s: %s", name, summary_line(measured[name]))
    copies, reals = measured[COPIES], measured[REAL]
    result = {
        "dataset": Path(data_path).stem,
        "images_per_set": size,
        "test_images": len(reference.test),
        "dropped_mode": dropped_mode,
        "prototypes": f"{distinct} distinct training images, the prototypes of {PROTOTYPES} "
        "k-means clusters of the training pixels",
        "features": spaces.summary,
        "sets": measured,
        "metrics": {metric: judge(metric, measured) for metric in METRICS},
        "copies_flagged": bool(
            copies["copied_fraction"] == 1.0
            and copies["novelty"]["value"] == 0.0
            and reals["novelty"]["value"] > 0
        ),
    }
    # by how many standard errors one Gaussian trails real images, per voting metric
    result["resolving_power"] = resolving_power(result)
    result["resolves"] = resolves(result)
    METRIC_CHECK.write(out, result)
    passed = [m for m, v in result["metrics"].items() if v["passed"]]
    log.info("%s: metrics that pass their checks: %s", data_path, ", ".join(passed) or "none")
    log.info(
        "one Gaussian behind real images by %s standard errors%s",
        ", ".join(f"{z:.1f} ({m})" for m, z in result["resolving_power"].items()) or "-",
        "" if result["resolves"] else ": too few metrics resolve it at this size",
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
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_stage(
        f"metric check on {args.data}",
        lambda: check(args.data, args.features, args.n, args.out),
    )


if __name__ == "__main__":
    sys.exit(main())
