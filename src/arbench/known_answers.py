"""The metric check's known answers: sets of images whose ranking against real ones is known,
and the checks a metric must pass on them before it may vote.

Per dataset: held-out real images (the valid split: best); one Gaussian fitted to the training
pixels, moment-matched and discretized (clearly worse); the real images blurred over 3x3 pixels
(worse; not for binary images, where it is a cleaning majority filter); real images with 5%, 15%
and 30% of their pixels replaced by noise (worse and worse); real images without one mode (one
label, or the largest k-means cluster of the learned features where there are no labels: low
recall and coverage); and training images (copies: novelty 0).

A fidelity metric passes when it puts the Gaussian, the blurred and the noisiest set behind real
images beyond two standard errors, and no noise level ahead of a lower one beyond two standard
errors; a diversity metric when it puts the mode-dropped set behind real images beyond two
standard errors. Only metrics that pass vote (`arbench.verdict`).

**Resolving power**: a set size is part of the instrument. At a given size the check's single
Gaussian must be worse than real images by more than `RESOLVING_SES` standard errors on at least
`RESOLVING_METRICS` metrics that vote; below that the dataset cannot resolve the question at this
size, whatever the verdict's counts say.
"""

from __future__ import annotations

import numpy as np

from arbench.features import FeatureSpaces
from arbench.sample_metrics import METRICS, better_by

NOISE = (0.05, 0.15, 0.30)


def gaussian_images(data, size: int, seed: int = 0) -> np.ndarray:
    """One Gaussian fitted to the dequantized training pixels (full covariance), sampled and
    discretized as the GMM's samples are: moment-matched images."""
    rng = np.random.default_rng(seed)
    levels = data.levels
    pixels = data.train.reshape(len(data.train), -1).astype(np.float64)
    dequantized = (pixels + rng.random(pixels.shape)) / levels
    draws = rng.multivariate_normal(
        dequantized.mean(0), np.cov(dequantized, rowvar=False), size=size, method="eigh"
    )
    images = np.clip(np.floor(draws * levels), 0, levels - 1).astype(np.uint8)
    return images.reshape(size, *data.shape)


def noisy(images: np.ndarray, fraction: float, levels: int, seed: int = 0) -> np.ndarray:
    """`images` with `fraction` of their values replaced by uniformly random levels."""
    rng = np.random.default_rng(seed)
    replaced = rng.random(images.shape) < fraction
    return np.where(replaced, rng.integers(0, levels, images.shape), images).astype(np.uint8)


def blurred(images: np.ndarray) -> np.ndarray:
    """Each image averaged over 3x3 neighbourhoods (edges repeated), rounded to its levels."""
    padded = np.pad(images.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    height, width = images.shape[2:]
    total = sum(padded[:, :, i : i + height, j : j + width] for i in range(3) for j in range(3))
    return np.round(total / 9).astype(np.uint8)


def mode_dropped(data, spaces: FeatureSpaces, size: int, seed: int = 0):
    """Valid images without their largest mode (a label, or where fewer than two labels tell
    them apart a k-means cluster of the learned features), a real set of the same size with
    every mode, and what was dropped."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    if data.labels and len(np.unique(data.labels["valid"])) > 1:
        modes = data.labels["valid"]
        names = data.meta.get("label_names") or []
    else:  # no labels, or one (a single game): clusters of the learned features
        features = spaces.embed(data.valid, "learned")
        modes = KMeans(5, n_init=4, random_state=seed).fit_predict(features)
        names = []
    largest = int(np.bincount(modes).argmax())
    kept = np.flatnonzero(modes != largest)
    count = min(size, len(kept))
    dropped = data.valid[rng.choice(kept, count, replace=False)]
    matched = data.valid[rng.choice(len(data.valid), count, replace=False)]
    what = f"label {names[largest]}" if largest < len(names) else f"cluster {largest} of 5"
    return (
        dropped,
        matched,
        f"{what} ({np.mean(modes == largest):.0%} of the valid images)",
    )


def worse(metric: str, measured: dict, a: str, b: str) -> dict:
    """Is set `a` worse than set `b` by `metric`, beyond two standard errors?"""
    gap, se = better_by(metric, measured[b][metric], measured[a][metric])
    return {"passed": bool(gap > 2 * se), "worse_by": gap, "se": se}


NOISY = [f"noise {fraction:.0%}" for fraction in NOISE]

REAL, GAUSSIAN, BLURRED, DROPPED, MATCHED, COPIES = (
    "real (valid)",
    "one Gaussian",
    "blurred",
    "mode dropped",
    "real, as many as mode dropped",
    "training copies",
)


def judge(metric: str, measured: dict) -> dict:
    """The checks a metric must pass to vote, and whether it passed them."""
    if METRICS[metric][1] == "fidelity":
        steps = list(zip((REAL, *NOISY[:-1]), NOISY, strict=True))
        # more noise never better beyond two standard errors (a saturated measure may tie)
        backwards = [worse(metric, measured, less, more) for less, more in steps]
        checks = {"one Gaussian worse than real": worse(metric, measured, GAUSSIAN, REAL)}
        if BLURRED in measured:
            checks["blurred worse than real"] = worse(metric, measured, BLURRED, REAL)
        checks[f"{NOISY[-1]} worse than real"] = worse(metric, measured, NOISY[-1], REAL)
        checks["noise levels in order"] = {"passed": not any(b["passed"] for b in backwards)}
    else:
        checks = {"mode dropped worse than real": worse(metric, measured, DROPPED, MATCHED)}
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}


RESOLVING_SES = 3.0  # standard errors by which one Gaussian must trail real images
RESOLVING_METRICS = 2  # on at least this many metrics that vote


def resolving_power(check: dict) -> dict[str, float]:
    """Per metric that passed its checks: by how many standard errors the single Gaussian
    trails the real images (at the check's set size)."""
    sets = check["sets"]
    found = {}
    for metric, judged in check["metrics"].items():
        if judged["passed"]:
            gap, se = better_by(metric, sets[REAL][metric], sets[GAUSSIAN][metric])
            found[metric] = gap / se if se > 0 else (np.inf if gap > 0 else 0.0)
    return found


def resolves(check: dict) -> bool:
    """Whether the set size tells one Gaussian from real images on enough voting metrics."""
    strong = [z for z in resolving_power(check).values() if z > RESOLVING_SES]
    return len(strong) >= RESOLVING_METRICS
