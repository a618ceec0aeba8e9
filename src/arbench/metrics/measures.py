"""The sample-quality metrics: how far a set of images lies from real ones, each with its math.

- **Fréchet distance** between Gaussians fitted to the features of two sets (the FID formula),
  and the **kernel distance** (KID: the unbiased squared maximum mean discrepancy with the cubic
  polynomial kernel, Bińkowski et al. 2018).
- **Precision and recall** (Kynkäänniemi et al. 2019) and **density and coverage** (Naeem et al.
  2020) with k-NN balls: fidelity (do the samples lie where real images do?) and diversity (do
  they reach everywhere real images do?) measured apart.
- **Classifier two-sample test** (Lopez-Paz & Oquab 2017): a small convolutional network, the
  same capacity and training budget for every set, trained to tell a set from as many real
  images; its cross-validated accuracy (0.5: indistinguishable; 1: always told apart), with a
  binomial standard error.
- **Diversity** (mean distance between two images of a set), and the **nearest** training image
  of each image (novelty, copies).

`arbench.core.plan.METRICS` names each metric, which way is better, and which part of the
hypothesis each measures. `better_by` is the one
signed gap between two measurements that the metric check and the verdict both use;
`no_better_than_real` reads a measurement against the real set's own value: real images are the
optimum, and a set that scores beyond them (more "precise" or "dense" than real) has piled its
samples on a few places, which is no gain.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from arbench.core.plan import METRICS
from arbench.metrics.spaces import scaled

K = 5

C2ST = {"folds": 3, "epochs": 30, "batch_size": 64, "lr": 2e-3}

# A standard error from subsets: the estimates of `SUBSETS` random subsets of `SUBSET_SHARE` of a
# set, drawn without replacement, spread by sqrt(SUBSET_SHARE / (1 - SUBSET_SHARE)) (the
# delete-d jackknife, d a quarter of the set: Shao and Wu 1989). Subsets this large keep the
# nonlinear measures (Fréchet, KID) near their full-size behaviour, where halves overstate their
# error (BENCHMARKS.md, "Standard errors against independent draws").
SUBSETS = 30
SUBSET_SHARE = 0.75
SUBSET_SCALE = math.sqrt(SUBSET_SHARE / (1 - SUBSET_SHARE))


class TooFewImages(ValueError):
    """A measurement was asked of fewer images than it needs."""


def psd_eigenvalues_root(values: np.ndarray) -> np.ndarray:
    """Square roots of a positive semi-definite matrix's computed eigenvalues. Those within
    rounding of zero (either sign) count as zero: the square root would blow their noise up to
    the square root of machine precision."""
    noise = np.abs(values).max(initial=0.0) * len(values) * np.finfo(values.dtype).eps
    return np.sqrt(np.where(values > noise, values, 0.0))


def psd_root(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * psd_eigenvalues_root(values)) @ vectors.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of Gaussians fitted to rows.

    tr (S_a S_b)^(1/2) is taken as tr (R S_b R)^(1/2) with R = S_a^(1/2): the same eigenvalues,
    but of a symmetric matrix, so singular covariances (few or repeated images) stay exact where
    a general matrix square root returns NaN."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = psd_root(cov_a)
    inner = root_a @ cov_b @ root_a
    trace_root = psd_eigenvalues_root(np.linalg.eigvalsh((inner + inner.T) / 2)).sum()
    value = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(value, 0.0))  # rounding can take an exact zero slightly negative


def kernel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """KID: unbiased squared MMD with the kernel (x.y / d + 1)^3 (Bińkowski et al. 2018).
    Zero in expectation for two samples of one distribution; may come out slightly negative."""
    if len(a) < 2 or len(b) < 2:
        raise TooFewImages(f"the kernel distance needs at least 2 images a set, got {len(a)}")
    d = a.shape[1]

    def kernel(x, y):
        return (x @ y.T / d + 1) ** 3

    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    m, n = len(a), len(b)
    within_a = (kaa.sum() - np.trace(kaa)) / (m * (m - 1))
    within_b = (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
    return float(within_a + within_b - 2 * kab.mean())


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    if len(points) <= k:
        raise TooFewImages(
            f"k-NN measures with k = {k} need more than {k} images, got {len(points)}"
        )
    distances = np.sqrt(squared_distances(points, points))
    np.fill_diagonal(distances, np.inf)
    return np.partition(distances, k - 1, axis=1)[:, k - 1]


def prdc(real: np.ndarray, fake: np.ndarray, k: int = K) -> dict[str, float]:
    """Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020)
    of the `fake` rows against the `real` rows, with k-NN balls. A ball is open, as in the
    authors' package (`prdc`, which a test compares with): a point on its boundary, such as a
    copy of a centre whose k nearest neighbours are copies too, is outside."""
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    between = np.sqrt(squared_distances(real, fake))  # (real, fake)
    inside_real = between < real_radii[:, None]  # fake j inside the ball of real i
    return {
        "precision": float(inside_real.any(0).mean()),
        "recall": float((between < fake_radii[None, :]).any(1).mean()),
        "density": float(inside_real.sum() / (k * fake.shape[0])),
        "coverage": float((between.min(1) < real_radii).mean()),
    }


def diversity(features: np.ndarray) -> float:
    """Mean distance between two different rows."""
    n = len(features)
    if n < 2:
        return 0.0
    distances = np.sqrt(squared_distances(features, features))
    return float(distances.sum() / (n * (n - 1)))


def nearest(pixels: np.ndarray, reference: np.ndarray, chunk: int = 2048):
    """For each row of `pixels`: (RMS pixel distance to the nearest row of `reference`, its
    index)."""
    best = np.full(len(pixels), np.inf)
    index = np.zeros(len(pixels), dtype=np.int64)
    for start in range(0, len(reference), chunk):
        block = squared_distances(pixels, reference[start : start + chunk])
        closest = block.argmin(1)
        value = block[np.arange(len(pixels)), closest]
        better = value < best
        best[better], index[better] = value[better], closest[better] + start
    # The expanded form above rounds; the winners' distances are recomputed exactly, so that a
    # copy is at distance 0, not 1e-9.
    exact = ((pixels - reference[index]) ** 2).mean(1)
    return np.sqrt(exact), index


class Discriminator(torch.nn.Module):
    """The two-sample test's classifier: two stride-2 convolutions and a linear read-out."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(128, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def two_sample_test(candidates: np.ndarray, real: np.ndarray, levels: int, seed: int = 0) -> dict:
    """Cross-validated accuracy of a classifier telling `candidates` from `real` (as many of
    each: a random subset of the larger, never its first images, which in a split stored game
    after game would all be of one game), with its binomial standard error; `seed` draws the
    subset, the folds, the initial weights and the order of the batches."""
    n = min(len(candidates), len(real))
    if n < C2ST["folds"]:
        raise TooFewImages(f"the two-sample test needs {C2ST['folds']} images a set, got {n}")
    rng = np.random.default_rng(seed)
    candidates = candidates[np.sort(rng.choice(len(candidates), n, replace=False))]
    real = real[np.sort(rng.choice(len(real), n, replace=False))]
    x = scaled(np.concatenate([candidates, real]), levels)
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    generator = torch.Generator().manual_seed(seed)
    folds = torch.randperm(2 * n, generator=generator).chunk(C2ST["folds"])
    correct = 0
    for fold, held_out in enumerate(folds):
        train = torch.cat([f for i, f in enumerate(folds) if i != fold])
        torch.manual_seed(seed * C2ST["folds"] + fold)
        model = Discriminator(x.shape[1])
        # foreach: one kernel per step for all the weights, bitwise the same update as the
        # per-tensor loop torch uses on the CPU by default, with less of the step's overhead
        optimizer = torch.optim.Adam(model.parameters(), lr=C2ST["lr"], foreach=True)
        for _ in range(C2ST["epochs"]):
            order = train[torch.randperm(len(train), generator=generator)]
            for start in range(0, len(order), C2ST["batch_size"]):
                batch = order[start : start + C2ST["batch_size"]]
                loss = F.binary_cross_entropy_with_logits(model(x[batch]), y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.inference_mode():
            correct += int(((model(x[held_out]) > 0).float() == y[held_out]).sum())
    accuracy = correct / (2 * n)
    return {
        "value": accuracy,
        "se": math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / (2 * n)),
    }


def better_by(metric: str, first: dict, second: dict) -> tuple[float, float]:
    """How much better `first` is than `second` by `metric` (negative: worse), and its SE: the
    two measurements' own errors and, where both were also measured against the same subsets of
    the test images (`reference`), what those shared images add to the difference (paired)."""
    gap = first["value"] - second["value"]
    if METRICS[metric][0] == "lower":
        gap = -gap
    return gap, math.sqrt(first["se"] ** 2 + second["se"] ** 2 + shared_variance(first, second))


def shared_variance(first: dict, second: dict) -> float:
    """The variance the shared test images add to the difference of two measurements: the
    spread of the difference of their values against the same subsets of the test images,
    scaled as the subsets' standard error is (0 where either has none)."""
    a, b = first.get("reference"), second.get("reference")
    if not a or not b or len(a) != len(b):
        return 0.0
    return float(np.var(np.subtract(a, b), ddof=1)) * SUBSET_SCALE**2


def no_better_than_real(metric: str, measured: dict, real: dict) -> dict:
    """`measured` as the verdict reads it: a value beyond the real set's own counts as the real
    set's (its errors kept), marked `beyond_real`."""
    if better_by(metric, measured, real)[0] > 0:
        return {**measured, "value": real["value"], "beyond_real": measured["value"]}
    return {**measured, "beyond_real": None}
