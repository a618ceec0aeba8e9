"""The quality stage: every sample-quality measurement of one set of images against real ones.

`python -m arbench.quality --data D.npz --features F.pt --samples S.npz --out Q.json` measures one
model's samples; the metric check (`arbench.metric_check`) measures its known-answer sets the same
way. Every set is compared with the same test images (a random subset of at most `TEST_IMAGES`),
by each metric of `arbench.sample_metrics`: Fréchet and kernel distances in four feature spaces
(the dataset's autoencoder and contrastive encoder, `arbench.features`; a random encoder of the
same shape; the top principal components of the training pixels), precision, recall, density and
coverage in the autoencoder's features, the classifier two-sample test, and diversity, novelty
and copies, which describe but do not vote.

A model's samples file holds two independent draws of `n` images, measured alike: the first
(`model`) is what the tables and figures show and what the verdict compares; the second
(`selection`) is what the verdict chooses each family's representative on, so that a family with
more members gains nothing from the noise of the draw it is judged on. The report's verdict
resamples both (`arbench.verdict`).

Beside the metrics, each set's pixels are described (they do not vote): the mean and spread of
its levels per channel, the share of the two extreme levels, and its roughness (the mean absolute
difference between neighbouring pixels, in levels): what a small classifier sees first.

± is a standard error: what another draw of the set would give, against the same test images.
For the distances and the k-NN measures it comes from the estimates of random subsets of three
quarters of the set, drawn without replacement, their spread times sqrt(3) (the delete-d
jackknife, `arbench.sample_metrics.SUBSETS`); the test images stay whole, as they do for every
set. For the classifier it is binomial over its held-out predictions. The error-bar check
(`arbench.error_check`) compares each with the spread of independent draws. Every set is
measured at the same size, `n` (the number of valid images or samples, whichever is smaller),
so that a held-out real set is the floor the others are read against. Features are divided by
the spread of the test images' features in their space, so distances in every space are read in
the same units.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arbench.cli import positive_int, run_stage, stage_parser
from arbench.contracts import QUALITY, SAMPLES
from arbench.data.format import load_dataset
from arbench.features import ENCODERS, FeatureSpaces
from arbench.plan import SPACES
from arbench.sample_metrics import (
    SUBSET_SCALE,
    SUBSET_SHARE,
    SUBSETS,
    FeatureSpace,
    K,
    TooFewImages,
    diversity,
    flat,
    frechet_distance,
    kernel_distance,
    nearest,
    prdc,
    two_sample_test,
)

log = logging.getLogger("arbench.quality")

TEST_IMAGES = 1_000


@dataclass
class Reference:
    """What every set of one dataset is compared with, prepared once."""

    data: object
    spaces: FeatureSpaces
    pca: FeatureSpace
    test: np.ndarray  # the test images compared with (a random subset of at most TEST_IMAGES)
    train_pixels: np.ndarray
    scales: dict[str, float]  # per space, the test features' spread: distances read in its units
    test_features: dict[str, np.ndarray]

    @classmethod
    def of(cls, data, spaces: FeatureSpaces) -> Reference:
        rng = np.random.default_rng(0)
        test = data.test
        if len(test) > TEST_IMAGES:
            test = test[np.sort(rng.choice(len(test), TEST_IMAGES, replace=False))]
        train_pixels = flat(data.train, data.levels)
        unscaled = {space: 1.0 for space in SPACES}
        reference = cls(
            data, spaces, FeatureSpace.fit(train_pixels), test, train_pixels, unscaled, {}
        )
        raw = reference.features(test)
        reference.scales = {
            space: float(np.sqrt(((raw[space] - raw[space].mean(0)) ** 2).sum(1).mean())) or 1.0
            for space in SPACES
        }
        reference.test_features = reference.features(test)
        return reference

    def features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Each space's features, divided by the spread of the test images' features in it."""
        found = {space: self.spaces.embed(images, space) for space in ENCODERS}
        found["pca"] = self.pca(flat(images, self.data.levels))
        return {space: values / self.scales[space] for space, values in found.items()}


def estimates(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> dict[str, float]:
    """Every distance and k-NN measure of one pair of feature sets."""
    values = {}
    for space in SPACES:
        values[f"frechet_{space}"] = frechet_distance(ours[space], theirs[space])
        values[f"kid_{space}"] = kernel_distance(ours[space], theirs[space])
    values.update(prdc(theirs["learned"], ours["learned"]))
    return values


def pixel_statistics(images: np.ndarray, levels: int) -> dict:
    values = images.astype(np.float64)
    across = np.abs(np.diff(values, axis=3)).mean() if images.shape[3] > 1 else 0.0
    down = np.abs(np.diff(values, axis=2)).mean() if images.shape[2] > 1 else 0.0
    return {
        "channel_mean": values.mean((0, 2, 3)).tolist(),
        "channel_sd": values.std((0, 2, 3)).tolist(),
        "extreme_share": float(((images == 0) | (images == levels - 1)).mean()),
        "roughness": float((across + down) / 2),
    }


def measure(images: np.ndarray, reference: Reference, seed: int = 0, classifier_seeds=(0,)) -> dict:
    """Every measurement of one set of images against the reference's test images, each with
    its standard error and, for the distances and k-NN measures, the estimates of the random
    subsets of the set that the error comes from (`arbench.sample_metrics.SUBSETS`); the
    classifier two-sample test once per seed of `classifier_seeds` (the first is
    `c2st_accuracy`, a second `c2st_accuracy_seed1`; none: no classifier)."""
    kept = round(SUBSET_SHARE * len(images))
    if kept <= K:
        raise TooFewImages(
            f"sample quality needs more than {math.ceil((K + 1) / SUBSET_SHARE)} images (k-NN "
            f"on subsets of {SUBSET_SHARE:.0%}, k = {K}), got {len(images)}"
        )
    ours = reference.features(images)
    theirs = reference.test_features
    point = estimates(ours, theirs)
    rng = np.random.default_rng(seed)
    subsets = []
    for _ in range(SUBSETS):
        chosen = rng.choice(len(images), kept, replace=False)
        subsets.append(estimates({s: f[chosen] for s, f in ours.items()}, theirs))
    result = {}
    for name, value in point.items():
        found = [subset[name] for subset in subsets]
        se = float(np.std(found, ddof=1) * SUBSET_SCALE)
        result[name] = {"value": value, "se": se, "subsets": found}
    for index, classifier_seed in enumerate(classifier_seeds):
        found = two_sample_test(images, reference.test, reference.data.levels, classifier_seed)
        result["c2st_accuracy" + (f"_seed{classifier_seed}" if index else "")] = found
    distance, neighbour = nearest(flat(images, reference.data.levels), reference.train_pixels)
    result.update(
        diversity={"value": diversity(ours["learned"])},
        novelty={
            "value": float(distance.mean()),
            "se": float(distance.std(ddof=1) / math.sqrt(len(distance))),
        },
        copied_fraction=float((distance == 0).mean()),
        images=len(images),
        pixels=pixel_statistics(images, reference.data.levels),
        nearest_train_index=neighbour.tolist(),  # what the report's neighbour panels show
    )
    return result


def set_size(requested: int, data) -> int:
    """Every set is measured at this size: the samples asked for, or the valid images there are."""
    return min(requested, len(data.valid))


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


def summary_line(measured: dict) -> str:
    return ", ".join(
        f"{name} {measured[name]['value']:.4g}"
        for name in (
            "frechet_learned",
            "kid_learned",
            "precision",
            "recall",
            "c2st_accuracy",
        )
    )


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
    )


if __name__ == "__main__":
    sys.exit(main())
