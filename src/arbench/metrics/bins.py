"""Mode coverage by bins: the number of statistically different bins (NDB) and the Jensen-Shannon
divergence between bin histograms (Richardson & Weiss 2018, "On GANs and GMMs", the paper that
asked this question of mixture models).

The training pixels are clustered by k-means into `bins` bins (fitted once per dataset by the
features stage, on at most `FIT_IMAGES` training images); every training image is then assigned
to its nearest centre, which gives the reference proportions. A set of images is assigned the
same way, and each bin's proportion in the set is compared with the training images' by a
two-proportion z-test. A bin is *different* when its test survives the Benjamini-Hochberg
procedure at a false discovery rate of `SIGNIFICANCE` over all bins (the correction for testing
`bins` bins at once). NDB is the share of bins found different (0: every bin holds as many of the
set's images as it should; a dropped mode empties its bins and overfills others); the
divergence is between the two histograms, in bits (0 to 1). Lower is better for both.

Compared with the training images, not the test images: with all of them the reference
proportions are nearly exact, and the test's power is the set's. Bins live in pixel space, outside
every learned feature space the other metrics use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SIGNIFICANCE = 0.05  # the false discovery rate over the bins
FIT_IMAGES = 10_000
MIN_BINS, MAX_BINS = 10, 100
IMAGES_PER_BIN = 30  # a set of n images is binned into about n / IMAGES_PER_BIN bins


def bins_for(set_size: int) -> int:
    """How many bins a set of `set_size` images is measured with: about `IMAGES_PER_BIN` of its
    images a bin (the paper's 100 at 3,000), within `MIN_BINS`-`MAX_BINS`."""
    return max(MIN_BINS, min(MAX_BINS, set_size // IMAGES_PER_BIN))


@dataclass
class Bins:
    """k-means centres of the training pixels and how many training images each holds."""

    centres: np.ndarray  # (bins, D) pixels in [0, 1]
    train_counts: np.ndarray  # (bins,)

    @classmethod
    def fit(cls, train_pixels: np.ndarray, bins: int, seed: int = 0) -> Bins:
        from sklearn.cluster import KMeans

        rng = np.random.default_rng(seed)
        fitted = train_pixels
        if len(fitted) > FIT_IMAGES:
            fitted = fitted[rng.choice(len(fitted), FIT_IMAGES, replace=False)]
        kmeans = KMeans(min(bins, len(fitted)), n_init=1, random_state=seed).fit(fitted)
        centres = kmeans.cluster_centers_
        counts = np.bincount(assign(centres, train_pixels), minlength=len(centres))
        return cls(centres, counts)

    def counts(self, pixels: np.ndarray) -> np.ndarray:
        return np.bincount(assign(self.centres, pixels), minlength=len(self.centres))


def assign(centres: np.ndarray, pixels: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """The nearest centre of each row of `pixels`."""
    squared = (centres**2).sum(1)
    parts = [
        (squared[None, :] - 2 * pixels[start : start + chunk] @ centres.T).argmin(1)
        for start in range(0, len(pixels), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def different_bins(counts: np.ndarray, reference: np.ndarray, rate: float = SIGNIFICANCE) -> int:
    """How many bins' proportions differ between two histograms: a two-proportion z-test per bin,
    Benjamini-Hochberg at false discovery rate `rate` over the bins."""
    n, m = counts.sum(), reference.sum()
    p, q = counts / n, reference / m
    pooled = (counts + reference) / (n + m)
    variance = pooled * (1 - pooled) * (1 / n + 1 / m)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, np.abs(p - q) / np.sqrt(variance), 0.0)
    p_values = np.sort([math.erfc(value / math.sqrt(2)) for value in z])
    ranks = np.arange(1, len(p_values) + 1)
    passing = np.flatnonzero(p_values <= ranks / len(p_values) * rate)
    return int(passing[-1] + 1) if len(passing) else 0


def jensen_shannon(counts: np.ndarray, reference: np.ndarray) -> float:
    """The Jensen-Shannon divergence between two histograms, in bits."""
    p, q = counts / counts.sum(), reference / reference.sum()
    middle = (p + q) / 2

    def divergence(a):
        inside = a > 0
        return float((a[inside] * np.log2(a[inside] / middle[inside])).sum())

    return max((divergence(p) + divergence(q)) / 2, 0.0)


def ndb(counts: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """NDB as the share of bins found different, and the bins' Jensen-Shannon divergence."""
    return {
        "ndb": different_bins(counts, reference) / len(counts),
        "ndb_jsd": jensen_shannon(counts, reference),
    }
