"""The quality stage: every sample-quality measurement of one model's samples against real ones.

`python -m arbench.quality --data D.npz --features F.pt --samples S.npz --out Q.json` measures a
model's two draws of samples (`arbench.metrics.measurement` says how each set is measured). A
samples file holds two independent draws of `n` images, measured alike: the first (`model`) is
what the tables and figures show and what the verdict compares; the second (`selection`) is what
the verdict chooses each family's representative on, so that a family with more members gains
nothing from the noise of the draw it is judged on. The report's verdict resamples both
(`arbench.metrics.verdict`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from arbench.core.cli import positive_int, run_stage, stage_parser
from arbench.core.contracts import QUALITY, SAMPLES
from arbench.data.format import load_dataset
from arbench.metrics.measurement import (
    Reference,
    measure,
    pixel_statistics,
    set_size,
    summary_line,
)
from arbench.metrics.measures import TooFewImages, diversity
from arbench.metrics.spaces import FeatureSpaces

log = logging.getLogger("arbench.quality")


def assess(data_path, features_path, samples_path, n: int, out) -> dict:
    """Measure one model's two draws of samples: the first `n` (or as many as there are valid
    images), then the next as many."""
    data = load_dataset(data_path)
    samples = SAMPLES.read(samples_path, levels=data.levels, shape=data.shape)["samples"]
    size = set_size(n, data)
    if len(samples) < 2 * size:
        raise TooFewImages(
            f"{samples_path} holds {len(samples)} samples; two draws of {size} are measured: "
            f"sample {2 * size} or more"
        )
    reference = Reference.of(data, FeatureSpaces.load(features_path))
    selection = measure(samples[size : 2 * size], reference, seed=1)
    selection.pop("nearest_train_index")
    result = {
        "dataset": Path(data_path).stem,
        "samples_file": str(samples_path),
        "test_images": len(reference.test),
        "test_diversity": diversity(reference.test_features["learned"]),
        "test_pixels": pixel_statistics(reference.test, data.levels),
        "model": measure(samples[:size], reference),
        "selection": selection,
    }
    QUALITY.write(out, result)
    log.info("%s: %s", samples_path, summary_line(result["model"]))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("arbench.quality", "Sample-quality measurements of one model.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--features", required=True, help="the dataset's features file")
    parser.add_argument("--samples", required=True, help="a model's samples (.npz) to measure")
    parser.add_argument(
        "--n",
        type=positive_int,
        default=500,
        help="images a set (at most the valid images); the samples file holds two sets",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_stage(
        f"quality of {args.samples}",
        lambda: assess(args.data, args.features, args.samples, args.n, args.out),
        inputs=(args.data, args.features, args.samples),
        outputs=(args.out,),
    )


if __name__ == "__main__":
    sys.exit(main())
