"""Sets of images measured against real ones: every sample-quality measurement, the same way for a
model's independent draws of samples (`arbench.quality`), the metric check's sets of known quality
(`arbench.metric_check`) and the error-bar check's draws (`arbench.error_check`).

Every set is compared with the same test images (a random subset of at most `TEST_IMAGES`), by
each metric of `arbench.metrics.measures`: Fréchet and kernel distances in four feature spaces
(`arbench.metrics.spaces`: the dataset's autoencoder and contrastive encoder, a random encoder of
the same shape, the top principal components of the training pixels), precision, recall, density
and coverage in the autoencoder's features, the classifier two-sample test; the instruments that
see modes: NDB and its divergence against the training images' bins (`arbench.metrics.bins`) and,
where labelled images exist, the class histogram (`arbench.metrics.classes`); and diversity,
novelty and copies, which describe. Beside the metrics, each set's pixels are described: the mean
and spread of its levels per channel, the share of the two extreme levels, and its roughness.

Two sources of variation, kept apart:

- **the set's images**: for a trained model, the spread of its independent draws
  (`measure_draws`); for a single set (the checks), the delete-d jackknife: the estimates of
  `SUBSETS` random subsets of three quarters of the set, their spread times sqrt(3)
  (`measure`). The error-bar check compares the latter with the spread of independent draws.
- **the test images**, shared by every set: each set is measured again against the same
  `SUBSETS` random subsets of three quarters of the test images (`reference` values). Two sets'
  difference varies with the test images by the spread of the difference of their reference
  values times sqrt(3): paired, since the same test images serve both. Subsets rather than a
  bootstrap, because a resample with repeated images collapses the k-NN balls of precision,
  recall, density and coverage.

Pairwise kernels and distances are computed once per set (`Comparison`); every subset's estimate
is read off them. Every set is measured at the same size, `n`, so that a held-out real set is
the floor the others are read against. Features are divided by the spread of the test images'
features in their space, so distances in every space are read in the same units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arbench.core.plan import SPACES
from arbench.metrics.bins import Bins, assign, ndb
from arbench.metrics.classes import Classes, total_variation
from arbench.metrics.measures import (
    SUBSET_SCALE,
    SUBSET_SHARE,
    SUBSETS,
    K,
    TooFewImages,
    diversity,
    nearest,
    psd_eigenvalues_root,
    psd_root,
    squared_distances,
    two_sample_test,
)
from arbench.metrics.spaces import ENCODERS, FeatureSpaces, flat

TEST_IMAGES = 1_000
CLASSIFIER = "c2st_accuracy"


def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's cubic polynomial kernel (`arbench.metrics.measures.kernel_distance`)."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sqrt(squared_distances(x, y))


def subset_indices(size: int, count: int, seed: int) -> list[np.ndarray]:
    """`count` random subsets of `SUBSET_SHARE` of `range(size)`, each drawn without
    replacement."""
    rng = np.random.default_rng(seed)
    kept = round(SUBSET_SHARE * size)
    return [np.sort(rng.choice(size, kept, replace=False)) for _ in range(count)]


@dataclass
class Reference:
    """What every set of one dataset is compared with, prepared once."""

    data: object
    spaces: FeatureSpaces
    test: np.ndarray  # the test images compared with (a random subset of at most TEST_IMAGES)
    train_pixels: np.ndarray
    scales: dict[str, float]  # per space, the test features' spread: distances read in its units
    test_features: dict[str, np.ndarray]
    bins: Bins | None
    classes: Classes | None
    test_classes: np.ndarray | None  # the class the label classifier gives each test image
    subsets: list[np.ndarray]  # the test images' subsets every set is measured against
    within: dict  # per space the test images' kernel, and their distances in the learned space

    @classmethod
    def of(cls, data, spaces: FeatureSpaces) -> Reference:
        rng = np.random.default_rng(0)
        test = data.test
        if len(test) > TEST_IMAGES:
            test = test[np.sort(rng.choice(len(test), TEST_IMAGES, replace=False))]
        train_pixels = flat(data.train, data.levels)
        bins = None
        if spaces.bins is not None:
            bins = Bins(spaces.bins["centres"].numpy(), spaces.bins["train_counts"].numpy())
        classes = None
        if spaces.classes is not None:
            classes = Classes(spaces.classes, data.shape[0], data.levels)
        unscaled = dict.fromkeys(SPACES, 1.0)
        reference = cls(data, spaces, test, train_pixels, unscaled, {}, bins, classes, None, [], {})
        raw = reference.embed(test)
        reference.scales = {
            space: float(np.sqrt(((raw[space] - raw[space].mean(0)) ** 2).sum(1).mean())) or 1.0
            for space in SPACES
        }
        reference.test_features = {space: raw[space] / reference.scales[space] for space in SPACES}
        reference.test_classes = classes(test) if classes else None
        reference.subsets = subset_indices(len(test), SUBSETS, seed=1)
        reference.within = {space: kernel(f, f) for space, f in reference.test_features.items()} | {
            "distances": distances(*[reference.test_features["learned"]] * 2)
        }
        return reference

    def embed(self, images: np.ndarray) -> dict[str, np.ndarray]:
        found = {space: self.spaces.embed(images, space) for space in ENCODERS}
        found["pca"] = self.spaces.pca(flat(images, self.data.levels))
        return found

    def features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Each space's features, divided by the spread of the test images' features in it."""
        return {space: values / self.scales[space] for space, values in self.embed(images).items()}

    def compare(self, images: np.ndarray) -> Comparison:
        return Comparison(images, self)


def frechet_from(a: np.ndarray, b: np.ndarray) -> float:
    """`arbench.metrics.measures.frechet_distance`, the same formula."""
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = psd_root(cov_a)
    inner = root_a @ cov_b @ root_a
    trace_root = psd_eigenvalues_root(np.linalg.eigvalsh((inner + inner.T) / 2)).sum()
    shift = ((a.mean(0) - b.mean(0)) ** 2).sum()
    return float(max(shift + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root, 0.0))


def within_mean(matrix: np.ndarray, index: np.ndarray) -> float:
    """The mean of a kernel matrix over distinct pairs of `index`."""
    block = matrix[np.ix_(index, index)]
    m = len(index)
    return float((block.sum() - np.trace(block)) / (m * (m - 1)))


def kth_nearest(matrix: np.ndarray, index: np.ndarray, k: int = K) -> np.ndarray:
    """Distance from each of `index` to its k-th nearest other of `index`."""
    if len(index) <= k:
        raise TooFewImages(
            f"k-NN measures with k = {k} need more than {k} images, got {len(index)}"
        )
    block = matrix[np.ix_(index, index)].copy()
    np.fill_diagonal(block, np.inf)
    return np.partition(block, k - 1, axis=1)[:, k - 1]


class Comparison:
    """One set of images against the reference's test images: their kernels and distances
    computed once, every estimate (of the whole set, of a subset of it, or against a subset of
    the test images) read off them."""

    def __init__(self, images: np.ndarray, reference: Reference):
        self.reference, self.images = reference, images
        self.ours = reference.features(images)
        theirs = reference.test_features
        self.kernels = {s: kernel(self.ours[s], self.ours[s]) for s in SPACES}
        self.cross = {s: kernel(self.ours[s], theirs[s]) for s in SPACES}
        self.distances = distances(self.ours["learned"], self.ours["learned"])
        self.between = distances(theirs["learned"], self.ours["learned"])  # (test, set)
        self.bin_of = None
        if reference.bins is not None:
            self.bin_of = assign(reference.bins.centres, flat(images, reference.data.levels))
        self.class_of = reference.classes(images) if reference.classes else None
        self.whole = np.arange(len(images))
        self.all_test = np.arange(len(reference.test))

    def estimates(self, ours: np.ndarray | None = None, theirs: np.ndarray | None = None) -> dict:
        """Every cheap metric (all but the classifier) of the set's images `ours` (default: all)
        against the test images `theirs` (default: all)."""
        ours = self.whole if ours is None else ours
        theirs = self.all_test if theirs is None else theirs
        reference = self.reference
        values = {}
        for space in SPACES:
            a, b = self.ours[space][ours], reference.test_features[space][theirs]
            values[f"frechet_{space}"] = frechet_from(a, b)
            values[f"kid_{space}"] = (
                within_mean(self.kernels[space], ours)
                + within_mean(reference.within[space], theirs)
                - 2 * float(self.cross[space][np.ix_(ours, theirs)].mean())
            )
        values.update(self.prdc(ours, theirs))
        if self.bin_of is not None:
            counts = np.bincount(self.bin_of[ours], minlength=len(reference.bins.centres))
            values.update(ndb(counts, reference.bins.train_counts))
        if self.class_of is not None:
            classes = reference.classes
            values["class_histogram"] = total_variation(
                classes.histogram(self.class_of[ours]),
                classes.histogram(reference.test_classes[theirs]),
            )
        return values

    def prdc(self, ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
        """`arbench.metrics.measures.prdc`, read off the distances computed once."""
        real_radii = kth_nearest(self.reference.within["distances"], theirs)
        fake_radii = kth_nearest(self.distances, ours)
        between = self.between[np.ix_(theirs, ours)]
        inside_real = between < real_radii[:, None]
        return {
            "precision": float(inside_real.any(0).mean()),
            "recall": float((between < fake_radii[None, :]).any(1).mean()),
            "density": float(inside_real.sum() / (K * len(ours))),
            "coverage": float((between.min(1) < real_radii).mean()),
        }

    def against_test_subsets(self) -> dict[str, list[float]]:
        """Every cheap metric of the whole set against each of the reference's subsets of the
        test images: the paired variation the test images bring."""
        found = [self.estimates(theirs=subset) for subset in self.reference.subsets]
        return {metric: [f[metric] for f in found] for metric in found[0]}

    def describe(self) -> dict:
        """What describes the set without voting: its diversity, novelty, copies and pixels,
        and each image's nearest training image."""
        reference = self.reference
        pixels = flat(self.images, reference.data.levels)
        distance, neighbour = nearest(pixels, reference.train_pixels)
        return {
            "diversity": {"value": diversity(self.ours["learned"])},
            "novelty": {
                "value": float(distance.mean()),
                "se": float(distance.std(ddof=1) / math.sqrt(len(distance))),
            },
            "copied_fraction": float((distance == 0).mean()),
            "images": len(self.images),
            "pixels": pixel_statistics(self.images, reference.data.levels),
            "nearest_train_index": neighbour.tolist(),
        }


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


def check_size(images: np.ndarray) -> None:
    if round(SUBSET_SHARE * len(images)) <= K:
        raise TooFewImages(
            f"sample quality needs more than {math.ceil((K + 1) / SUBSET_SHARE)} images (k-NN "
            f"on subsets of {SUBSET_SHARE:.0%}, k = {K}), got {len(images)}"
        )


def measure(images: np.ndarray, reference: Reference, seed: int = 0, classifier_seeds=(0,)) -> dict:
    """Every measurement of one set of images, each with its standard error from subsets of the
    set (`subsets`: the estimates they come from) and its values against the subsets of the
    test images (`reference`); the classifier two-sample test once per seed of
    `classifier_seeds` (the first is `c2st_accuracy`, a second `c2st_accuracy_seed1`; none: no
    classifier), its error binomial."""
    check_size(images)
    comparison = reference.compare(images)
    point = comparison.estimates()
    subsets = [comparison.estimates(ours=s) for s in subset_indices(len(images), SUBSETS, seed)]
    against = comparison.against_test_subsets()
    result = {}
    for name, value in point.items():
        found = [subset[name] for subset in subsets]
        se = float(np.std(found, ddof=1) * SUBSET_SCALE)
        result[name] = {"value": value, "se": se, "subsets": found, "reference": against[name]}
    for index, classifier_seed in enumerate(classifier_seeds):
        found = two_sample_test(images, reference.test, reference.data.levels, classifier_seed)
        result[CLASSIFIER + (f"_seed{classifier_seed}" if index else "")] = found
    result.update(comparison.describe())
    return result


def measure_draws(draws: list[np.ndarray], reference: Reference, classifier_draws: int) -> dict:
    """A trained model's independent draws of samples: every cheap metric of every draw, the
    first draw's values against the subsets of the test images (`reference`: what the shared
    test images add to a difference between two models), the classifier two-sample test on the
    first `classifier_draws` draws (it is nearly all of a measurement's cost), and the first
    draw described."""
    for images in draws:
        check_size(images)
    values, against, described = [], {}, {}
    for index, images in enumerate(draws):
        comparison = reference.compare(images)
        values.append(comparison.estimates())
        if index == 0:
            against = comparison.against_test_subsets()
            described = comparison.describe()
    classifier = [
        two_sample_test(images, reference.test, reference.data.levels, seed=0)
        for images in draws[:classifier_draws]
    ]
    return {"draws": values, "reference": against, CLASSIFIER: classifier, **described}


def set_size(requested: int, data) -> int:
    """Every set is measured at this size: the samples asked for, or the valid images there are."""
    return min(requested, len(data.valid))


def summary_line(measured: dict) -> str:
    shown = ("frechet_learned", "kid_learned", "precision", "recall", "ndb", CLASSIFIER)
    return ", ".join(f"{name} {measured[name]['value']:.4g}" for name in shown if name in measured)
