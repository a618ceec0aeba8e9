"""The metric check's known answers: sets of images whose ranking against real ones is known,
and the checks a metric must pass on them before it may vote.

Per dataset: held-out real images (the valid split: best); one Gaussian fitted to the training
pixels, moment-matched and discretized (clearly worse); the real images blurred over 3x3 pixels
(worse; not for binary images, where it is a cleaning majority filter); real images with 5%, 15%
and 30% of their pixels replaced by noise (worse and worse); real images without one mode (one
label, or the largest k-means cluster of the learned features where there are no labels: low
recall and coverage); the real images each replaced by the prototype of its nearest of
`PROTOTYPES` k-means clusters of the training pixels (fewer, denser modes: less rich than real,
and better than real on nothing, though it lies where real images are dense); and training images
(copies: novelty 0).

A fidelity metric passes when it puts the Gaussian, the blurred and the noisiest set behind real
images beyond two standard errors, and no noise level ahead of a lower one beyond two standard
errors; a diversity metric when it puts the mode-dropped set and the prototypes behind real images
beyond two standard errors; the omnibus classifier test must do both. A fidelity metric may score
the prototypes beyond real images (higher precision and density, Kynkäänniemi et al. 2019, Naeem
et al. 2020): the verdict reads every metric against the real set's own value
(`arbench.sample_metrics.no_better_than_real`), so such a score gains nothing; the check records
it.

**Resolving power**: a set size is part of the instrument. A metric votes on a dataset only where
it puts the check's single Gaussian behind real images by more than `RESOLVING_SES` standard
errors itself; and the dataset is decided only where at least `RESOLVING_METRICS` voting metrics
do, whatever the verdict's counts say.
"""

from __future__ import annotations

import numpy as np

from arbench.features import FeatureSpaces
from arbench.plan import DIVERSITY, FIDELITY, METRICS, OMNIBUS
from arbench.sample_metrics import better_by, flat, nearest

NOISE = (0.05, 0.15, 0.30)
PROTOTYPES = 30  # clusters of the prototype set
PROTOTYPE_FIT_IMAGES = 10_000


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


def prototypes(data, images: np.ndarray, clusters: int = PROTOTYPES, seed: int = 0):
    """`images` each replaced by the prototype of its nearest k-means cluster of the training
    pixels: the training image nearest to that cluster's centre (an image on the dataset's
    support, whatever its levels). Returns the set and how many distinct images it holds."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    train = flat(data.train, data.levels)
    fitted = train
    if len(fitted) > PROTOTYPE_FIT_IMAGES:
        fitted = fitted[rng.choice(len(fitted), PROTOTYPE_FIT_IMAGES, replace=False)]
    clusters = min(clusters, len(fitted))
    kmeans = KMeans(clusters, n_init=2, random_state=seed).fit(fitted)
    _, medoids = nearest(kmeans.cluster_centers_, train)
    assigned = kmeans.predict(flat(images, data.levels))
    chosen = data.train[medoids[assigned]]
    return chosen, len(np.unique(medoids[assigned]))


def worse(metric: str, measured: dict, a: str, b: str) -> dict:
    """Is set `a` worse than set `b` by `metric`, beyond two standard errors?"""
    gap, se = better_by(metric, measured[b][metric], measured[a][metric])
    return {"passed": bool(gap > 2 * se), "worse_by": gap, "se": se}


NOISY = [f"noise {fraction:.0%}" for fraction in NOISE]

REAL, GAUSSIAN, BLURRED, DROPPED, MATCHED, PROTOTYPE, COPIES = (
    "real (valid)",
    "one Gaussian",
    "blurred",
    "mode dropped",
    "real, as many as mode dropped",
    "prototypes",
    "training copies",
)

RESOLVING_SES = 3.0  # standard errors by which one Gaussian must trail real images
RESOLVING_METRICS = 2  # on at least this many metrics that vote
RESOLVES = f"one Gaussian more than {RESOLVING_SES:g} SE behind real"


def trails_by(metric: str, measured: dict) -> float:
    """By how many standard errors the single Gaussian trails the real images."""
    gap, se = better_by(metric, measured[REAL][metric], measured[GAUSSIAN][metric])
    return gap / se if se > 0 else (np.inf if gap > 0 else 0.0)


def judge(metric: str, measured: dict) -> dict:
    """The checks a metric must pass to vote, whether it passed them, and whether it scores
    the prototypes beyond real images (what the verdict's reading against real neutralises)."""
    part = METRICS[metric][1]
    checks = {}
    if part in (FIDELITY, OMNIBUS):
        steps = list(zip((REAL, *NOISY[:-1]), NOISY, strict=True))
        # more noise never better beyond two standard errors (a saturated measure may tie)
        backwards = [worse(metric, measured, less, more) for less, more in steps]
        checks["one Gaussian worse than real"] = worse(metric, measured, GAUSSIAN, REAL)
        if BLURRED in measured:
            checks["blurred worse than real"] = worse(metric, measured, BLURRED, REAL)
        checks[f"{NOISY[-1]} worse than real"] = worse(metric, measured, NOISY[-1], REAL)
        checks["noise levels in order"] = {"passed": not any(b["passed"] for b in backwards)}
    if part in (DIVERSITY, OMNIBUS):
        checks["mode dropped worse than real"] = worse(metric, measured, DROPPED, MATCHED)
        checks["prototypes worse than real"] = worse(metric, measured, PROTOTYPE, REAL)
    power = trails_by(metric, measured)
    checks[RESOLVES] = {
        "passed": bool(power > RESOLVING_SES),
        "standard_errors": power,
    }
    prototypes_beyond = better_by(metric, measured[PROTOTYPE][metric], measured[REAL][metric])
    return {
        "passed": all(c["passed"] for c in checks.values()),
        "checks": checks,
        "prototypes_beyond_real": bool(prototypes_beyond[0] > 2 * prototypes_beyond[1]),
    }


def sound(check: dict, metric: str) -> bool:
    """Whether a metric ranks the known-answer sets right, whatever the set size resolves."""
    found = check["metrics"][metric]["checks"]
    return all(result["passed"] for name, result in found.items() if name != RESOLVES)


def resolving_power(check: dict) -> dict[str, float]:
    """Per metric that passed its checks: by how many standard errors the single Gaussian
    trails the real images (at the check's set size)."""
    return {
        metric: trails_by(metric, check["sets"])
        for metric, judged in check["metrics"].items()
        if judged["passed"]
    }


def resolves(check: dict) -> bool:
    """Whether the set size tells one Gaussian from real images on enough voting metrics."""
    strong = [z for z in resolving_power(check).values() if z > RESOLVING_SES]
    return len(strong) >= RESOLVING_METRICS
