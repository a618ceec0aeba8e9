"""Sample quality: the same measurements for every model, in one fixed feature space per dataset.

`python -m arbench.quality --data D.npz --samples S.npz --out quality.json` writes, for one
model's samples:

- **Fréchet distance** between Gaussians fitted to the features of the samples and of the test
  images (the FID formula, on our features): 0 for identical sets, larger when the samples'
  mean or spread of features is off.
- **Kernel distance**: the squared maximum mean discrepancy between samples and test images with
  a Gaussian kernel on the features (biased V-statistic, so identical sets give exactly 0).
- **Diversity**: mean Euclidean distance between two different samples, in the same features;
  0 when every sample is the same image. The test images' own diversity is the reference.
- **Novelty**: mean distance from each sample to its nearest training image, in pixels scaled to
  [0, 1] and divided by sqrt(dims) (a root-mean-square pixel difference); 0 for a copied
  training image. Also the fraction of samples that are exact copies. The test images' distance
  to the training set is the reference: what a new real image looks like.

Features are the top principal components of the training images (pixels scaled to [0, 1]),
fitted once per dataset with a fixed seed: a fixed projection that every model shares. Each
figure comes with a bootstrap standard error (resampling samples and test images).

A reference row, `real`, applies the same measurements to as many held-out valid images as
there are samples: the floor that finite sample sizes put under each distance.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arbench.cli import run_stage
from arbench.data.format import load_dataset
from arbench.files import atomic_write

log = logging.getLogger("arbench.quality")

COMPONENTS = 32
FIT_IMAGES = 10_000
TEST_IMAGES = 1_000
BOOTSTRAP = 100


def flat(images: np.ndarray, levels: int) -> np.ndarray:
    """(N, C, H, W) levels -> (N, D) float64 in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float64) / (levels - 1)


@dataclass
class FeatureSpace:
    """Projection onto the top principal components of a reference set of images."""

    mean: np.ndarray
    components: np.ndarray  # (k, D)

    @classmethod
    def fit(cls, pixels: np.ndarray, components: int = COMPONENTS, seed: int = 0):
        rng = np.random.default_rng(seed)
        if len(pixels) > FIT_IMAGES:
            pixels = pixels[rng.choice(len(pixels), FIT_IMAGES, replace=False)]
        mean = pixels.mean(0)
        _, _, rows = np.linalg.svd(pixels - mean, full_matrices=False)
        return cls(mean, rows[: min(components, len(rows))])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return (pixels - self.mean) @ self.components.T


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
    but of a symmetric matrix, so singular covariances (few or repeated images, as in bootstrap
    replicates) stay exact where a general matrix square root returns NaN."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = psd_root(cov_a)
    inner = root_a @ cov_b @ root_a
    trace_root = psd_eigenvalues_root(np.linalg.eigvalsh((inner + inner.T) / 2)).sum()
    value = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(value, 0.0))  # rounding can take an exact zero slightly negative


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def kernel_distance(a: np.ndarray, b: np.ndarray, bandwidth: float) -> float:
    """Biased squared MMD with the kernel exp(-|x - y|^2 / (2 bandwidth^2))."""

    def mean_kernel(x, y):
        return np.exp(-squared_distances(x, y) / (2 * bandwidth**2)).mean()

    return float(max(mean_kernel(a, a) + mean_kernel(b, b) - 2 * mean_kernel(a, b), 0.0))


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


def median_bandwidth(features: np.ndarray) -> float:
    """The median distance between rows: a scale every model's kernel distance shares."""
    distances = np.sqrt(squared_distances(features, features))
    positive = distances[distances > 0]
    return float(np.median(positive)) if len(positive) else 1.0


def summary(values: list[float]) -> dict:
    return {"value": float(values[0]), "se": float(np.std(values[1:], ddof=1))}


def measure(
    candidates: np.ndarray,
    test: np.ndarray,
    train: np.ndarray,
    space: FeatureSpace,
    bandwidth: float,
    seed: int = 0,
) -> dict:
    """All four measurements of `candidates` (pixels in [0, 1]), each with a bootstrap SE."""
    rng = np.random.default_rng(seed)
    ours, theirs = space(candidates), space(test)
    frechet, kernel, spread = [], [], []
    for replicate in range(BOOTSTRAP + 1):
        if replicate == 0:  # the estimate itself, then bootstrap replicates for its spread
            a, b = ours, theirs
        else:
            a = ours[rng.integers(0, len(ours), len(ours))]
            b = theirs[rng.integers(0, len(theirs), len(theirs))]
        frechet.append(frechet_distance(a, b))
        kernel.append(kernel_distance(a, b, bandwidth))
        spread.append(diversity(a))
    distance, neighbour = nearest(candidates, train)
    copies = distance == 0
    return {
        "frechet_distance": summary(frechet),
        "kernel_distance": summary(kernel),
        "diversity": summary(spread),
        "novelty": {
            "value": float(distance.mean()),
            "se": float(distance.std(ddof=1) / math.sqrt(len(distance))),
        },
        "copied_fraction": float(copies.mean()),
        "images": len(candidates),
        "nearest_train_index": neighbour.tolist(),  # what the report's neighbour panels show
    }


def assess(data_path, samples_path, out) -> dict:
    data = load_dataset(data_path)
    samples = np.load(samples_path)["samples"]
    levels = data.levels
    train, test = flat(data.train, levels), flat(data.test, levels)
    rng = np.random.default_rng(0)
    if len(test) > TEST_IMAGES:
        test = test[rng.choice(len(test), TEST_IMAGES, replace=False)]
    space = FeatureSpace.fit(train)
    probe = space(test[:500])
    bandwidth = median_bandwidth(probe)
    # A random subset: splits may be ordered (Atari frames by episode), and the first images
    # would be one episode's.
    chosen = rng.choice(len(data.valid), min(len(samples), len(data.valid)), replace=False)
    valid = flat(data.valid[np.sort(chosen)], levels)
    result = {
        "dataset": Path(data_path).stem,
        "samples_file": str(samples_path),
        "features": f"top {len(space.components)} principal components of the training images",
        "test_images": len(test),
        "kernel_bandwidth": bandwidth,
        "model": measure(flat(samples, levels), test, train, space, bandwidth),
        "real": measure(valid, test, train, space, bandwidth),
        "test_diversity": diversity(probe),
    }
    atomic_write(Path(out), lambda h: h.write(json.dumps(result, indent=2).encode() + b"\n"))
    model = result["model"]
    log.info(
        "%s: Fréchet %.3f, kernel %.4f, diversity %.3f, novelty %.4f",
        samples_path,
        model["frechet_distance"]["value"],
        model["kernel_distance"]["value"],
        model["diversity"]["value"],
        model["novelty"]["value"],
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sample-quality measurements of one model.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_stage(
        f"quality of {args.samples}", lambda: assess(args.data, args.samples, args.out)
    )


if __name__ == "__main__":
    sys.exit(main())
