"""The quality stage: every sample-quality measurement of one model's samples against real ones.

`python -m arbench.quality --data D.npz --features F.pt --samples S.npz --n 500 --draws 5
--classifier-draws 2 --out Q.json` measures a model's independent draws of `n` samples each
(`arbench.metrics.measurement.measure_draws` says how): every metric but the classifier test on
every draw, so that the spread of the draws is the error of the model's value; the first draw
against subsets of the test images too, for what the shared test images add to a difference
between two models; the classifier two-sample test, nearly all of a measurement's cost, on the
first `classifier_draws` draws. The report's verdict reads them (`arbench.metrics.verdict`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from arbench.core.cli import positive_int, run_stage, stage_parser
from arbench.core.contracts import QUALITY, SAMPLES
from arbench.data.format import load_dataset
from arbench.metrics.measurement import (
    CLASSIFIER,
    Reference,
    measure_draws,
    pixel_statistics,
    set_size,
)
from arbench.metrics.measures import TooFewImages, diversity
from arbench.metrics.spaces import FeatureSpaces

log = logging.getLogger("arbench.quality")


def assess(
    data_path, features_path, samples_path, n: int, draws: int, classifier_draws: int, out
) -> dict:
    """Measure one model's `draws` draws of `n` samples (or as many as there are valid images)."""
    data = load_dataset(data_path)
    samples = SAMPLES.read(samples_path, levels=data.levels, shape=data.shape)["samples"]
    size = set_size(n, data)
    if len(samples) < draws * size:
        raise TooFewImages(
            f"{samples_path} holds {len(samples)} samples; {draws} draws of {size} are "
            f"measured: sample {draws * size} or more"
        )
    reference = Reference.of(data, FeatureSpaces.load(features_path))
    sets = [samples[i * size : (i + 1) * size] for i in range(draws)]
    result = {
        "dataset": Path(data_path).stem,
        "samples_file": str(samples_path),
        "images_per_set": size,
        "test_images": len(reference.test),
        "test_diversity": diversity(reference.test_features["learned"]),
        "test_pixels": pixel_statistics(reference.test, data.levels),
        "model": measure_draws(sets, reference, min(classifier_draws, draws)),
    }
    QUALITY.write(out, result)
    first = result["model"]["draws"][0]
    log.info(
        "%s: %d draws of %d; first draw: %s; classifier %s",
        samples_path,
        draws,
        size,
        ", ".join(f"{m} {first[m]:.4g}" for m in ("frechet_learned", "recall", "ndb")),
        ", ".join(f"{c['value']:.3f}" for c in result["model"][CLASSIFIER]),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.quality", "Sample-quality measurements of one model.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--features", required=True, help="the dataset's features file")
    parser.add_argument("--samples", required=True, help="a model's samples (.npz) to measure")
    parser.add_argument(
        "--n", type=positive_int, default=500, help="images a draw (at most the valid images)"
    )
    parser.add_argument(
        "--draws", type=positive_int, default=5, help="independent draws the samples file holds"
    )
    parser.add_argument(
        "--classifier-draws",
        type=positive_int,
        default=2,
        help="draws the classifier two-sample test is run on (the first ones)",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_stage(
        f"quality of {args.samples}",
        lambda: assess(
            args.data,
            args.features,
            args.samples,
            args.n,
            args.draws,
            args.classifier_draws,
            args.out,
        ),
        inputs=(args.data, args.features, args.samples),
        outputs=(args.out,),
    )


if __name__ == "__main__":
    sys.exit(main())
