"""One set of images measured against real ones: every sample-quality measurement, each with its
standard error, the same way for a model's samples (`arbench.quality`), the metric check's sets of
known quality (`arbench.metric_check`) and the error-bar check's independent draws
(`arbench.error_check`).

Every set is compared with the same test images (a random subset of at most `TEST_IMAGES`), by
each metric of `arbench.metrics.measures`: Fréchet and kernel distances in four feature spaces
(`arbench.metrics.spaces`: the dataset's autoencoder and contrastive encoder, a random encoder of
the same shape, the top principal components of the training pixels), precision, recall, density
and coverage in the autoencoder's features, the classifier two-sample test, and diversity,
novelty and copies, which describe but do not vote. Beside the metrics, each set's pixels are
described (they do not vote): the mean and spread of its levels per channel, the share of the two
extreme levels, and its roughness (the mean absolute difference between neighbouring pixels, in
levels): what a small classifier sees first.

± is a standard error: what another draw of the set would give, against the same test images.
For the distances and the k-NN measures it comes from the estimates of random subsets of three
quarters of the set, drawn without replacement, their spread times sqrt(3) (the delete-d
jackknife, `arbench.metrics.measures.SUBSETS`); the test images stay whole, as they do for every
set. For the classifier it is binomial over its held-out predictions. The error-bar check
compares each with the spread of independent draws. Every set is measured at the same size, `n`
(the number of valid images or samples, whichever is smaller), so that a held-out real set is
the floor the others are read against. Features are divided by the spread of the test images'
features in their space, so distances in every space are read in the same units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arbench.core.plan import SPACES
from arbench.metrics.measures import (
    SUBSET_SCALE,
    SUBSET_SHARE,
    SUBSETS,
    K,
    TooFewImages,
    diversity,
    frechet_distance,
    kernel_distance,
    nearest,
    prdc,
    two_sample_test,
)
from arbench.metrics.spaces import ENCODERS, FeatureSpaces, flat

TEST_IMAGES = 1_000


@dataclass
class Reference:
    """What every set of one dataset is compared with, prepared once."""

    data: object
    spaces: FeatureSpaces
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
        reference = cls(data, spaces, test, train_pixels, unscaled, {})
        raw = reference.features(test)
        reference.scales = {
            space: float(np.sqrt(((raw[space] - raw[space].mean(0)) ** 2).sum(1).mean())) or 1.0
            for space in SPACES
        }
        reference.test_features = {space: raw[space] / reference.scales[space] for space in SPACES}
        return reference

    def features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Each space's features, divided by the spread of the test images' features in it."""
        found = {space: self.spaces.embed(images, space) for space in ENCODERS}
        found["pca"] = self.spaces.pca(flat(images, self.data.levels))
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
    subsets of the set that the error comes from (`arbench.metrics.measures.SUBSETS`); the
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
