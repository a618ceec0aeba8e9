"""Sample quality: the same measurements of every set of images, checked against known answers.

`python -m arbench.quality --data D.npz --features F.pt --samples S.npz --out Q.json` measures one
model's samples; `python -m arbench.quality --data D.npz --features F.pt --check --out C.json`
measures reference sets whose ranking is known (the metric check) and says which metrics rank them
correctly. Every set is compared with the same test images, in these measurements:

- **Fréchet distance** between Gaussians fitted to the features of the set and of the test images
  (the FID formula), and the **kernel distance** (KID: the unbiased squared maximum mean
  discrepancy with the cubic polynomial kernel, Bińkowski et al. 2018), each in three feature
  spaces: the dataset's learned encoder (`arbench.features`), a random encoder of the same shape,
  and the top 32 principal components of the training pixels (`pca`, kept to show what linear
  features miss: a Gaussian model matches their mean and covariance by construction).
- **Precision and recall** (Kynkäänniemi et al. 2019) and **density and coverage** (Naeem et al.
  2020), k = 5, in the learned features: fidelity (do the samples lie where real images do?) and
  diversity (do they reach everywhere real images do?) measured apart.
- **Classifier two-sample test** (Lopez-Paz & Oquab 2017): a small convolutional network, the
  same capacity and training budget for every set, trained to tell the set from as many test
  images; its cross-validated accuracy (0.5: indistinguishable; 1: always told apart).
- **Diversity** (mean distance between two images of the set, learned features), **novelty** (RMS
  pixel distance to the nearest training image) and the share of exact **copies** of training
  images, which describe but do not vote.

± is a standard error: for the distances and the k-NN measures, from random halves of both sets
(the spread of half-size estimates divided by √2); for the classifier, binomial over its held-out
predictions. Every set is measured at the same size, `n` (the number of valid images or samples,
whichever is smaller), so that a held-out real set is the floor the others are read against.

The check's reference sets, per dataset: held-out real images (the valid split: best); one Gaussian
fitted to the training pixels, moment-matched and discretized (clearly worse); the real images
blurred over 3x3 pixels (worse; not for binary images, where it is a cleaning majority filter);
real images with 5%, 15% and 30% of their pixels replaced by
noise (worse and worse); real images without one mode (one label, or the largest k-means cluster
of the learned features where there are no labels: low recall and coverage); and training images
(copies: novelty 0). A fidelity metric passes when it puts the Gaussian, the blurred and the
noisiest set behind real images beyond two standard errors, and no noise level ahead of a lower
one beyond two standard errors; a
diversity metric when it puts the mode-dropped set behind real images beyond two standard errors.
Features are divided by the spread of the test images' features in their space, so distances in
every space are read in the same units. Only metrics that pass vote in the verdict
(`arbench.verdict`).
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
import torch
import torch.nn.functional as F

from arbench.cli import positive_int, run_stage
from arbench.data.format import load_dataset
from arbench.features import FeatureSpaces, scaled
from arbench.files import write_text

log = logging.getLogger("arbench.quality")

COMPONENTS = 32
FIT_IMAGES = 10_000
TEST_IMAGES = 1_000
HALVES = 30
K = 5
NOISE = (0.05, 0.15, 0.30)
C2ST = {"folds": 5, "epochs": 30, "batch_size": 64, "lr": 2e-3, "seed": 0}
SPACES = ("learned", "random", "pca")
# metric -> (which way is better, what it measures); only these vote
METRICS = {
    **{f"frechet_{space}": ("lower", "fidelity") for space in SPACES},
    **{f"kid_{space}": ("lower", "fidelity") for space in SPACES},
    "precision": ("higher", "fidelity"),
    "density": ("higher", "fidelity"),
    "c2st_accuracy": ("lower", "fidelity"),
    "recall": ("higher", "diversity"),
    "coverage": ("higher", "diversity"),
}


class TooFewImages(ValueError):
    """A measurement was asked of fewer images than it needs."""


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
    of the `fake` rows against the `real` rows, with k-NN balls."""
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    between = np.sqrt(squared_distances(real, fake))  # (real, fake)
    inside_real = between <= real_radii[:, None]  # fake j inside the ball of real i
    return {
        "precision": float(inside_real.any(0).mean()),
        "recall": float((between <= fake_radii[None, :]).any(1).mean()),
        "density": float(inside_real.sum() / (k * fake.shape[0])),
        "coverage": float((between.min(1) <= real_radii).mean()),
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


def two_sample_test(candidates: np.ndarray, real: np.ndarray, levels: int) -> dict:
    """Cross-validated accuracy of a classifier telling `candidates` from `real` (as many of
    each), with its binomial standard error."""
    n = min(len(candidates), len(real))
    if n < C2ST["folds"]:
        raise TooFewImages(f"the two-sample test needs {C2ST['folds']} images a set, got {n}")
    x = scaled(np.concatenate([candidates[:n], real[:n]]), levels)
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    generator = torch.Generator().manual_seed(C2ST["seed"])
    folds = torch.randperm(2 * n, generator=generator).chunk(C2ST["folds"])
    correct = 0
    for fold, held_out in enumerate(folds):
        train = torch.cat([f for i, f in enumerate(folds) if i != fold])
        torch.manual_seed(C2ST["seed"] + fold)
        model = Discriminator(x.shape[1])
        optimizer = torch.optim.Adam(model.parameters(), lr=C2ST["lr"])
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
        found = {space: self.spaces.embed(images, space) for space in ("learned", "random")}
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


def measure(images: np.ndarray, reference: Reference, seed: int = 0) -> dict:
    """Every measurement of one set of images against the reference's test images."""
    if len(images) <= 2 * K:
        raise TooFewImages(
            f"sample quality needs more than {2 * K} images (k-NN on half sets, k = {K}), "
            f"got {len(images)}"
        )
    ours = reference.features(images)
    theirs = reference.test_features
    point = estimates(ours, theirs)
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(HALVES):
        a = rng.choice(len(images), len(images) // 2, replace=False)
        b = rng.choice(len(reference.test), len(reference.test) // 2, replace=False)
        halves.append(
            estimates({s: f[a] for s, f in ours.items()}, {s: f[b] for s, f in theirs.items()})
        )
    result = {
        name: {
            "value": value,
            "se": float(np.std([h[name] for h in halves], ddof=1) / math.sqrt(2)),
        }
        for name, value in point.items()
    }
    result["c2st_accuracy"] = two_sample_test(images, reference.test, reference.data.levels)
    distance, neighbour = nearest(flat(images, reference.data.levels), reference.train_pixels)
    result.update(
        diversity={"value": diversity(ours["learned"])},
        novelty={
            "value": float(distance.mean()),
            "se": float(distance.std(ddof=1) / math.sqrt(len(distance))),
        },
        copied_fraction=float((distance == 0).mean()),
        images=len(images),
        nearest_train_index=neighbour.tolist(),  # what the report's neighbour panels show
    )
    return result


def set_size(requested: int, data) -> int:
    """Every set is measured at this size: the samples asked for, or the valid images there are."""
    return min(requested, len(data.valid))


def assess(data_path, features_path, samples_path, n: int, out) -> dict:
    """Measure one model's samples (the first `n`, or as many valid images as there are)."""
    data = load_dataset(data_path)
    samples = np.load(samples_path)["samples"]
    size = set_size(n, data)
    if len(samples) < size:
        raise TooFewImages(f"{samples_path} holds {len(samples)} samples; {size} are measured")
    reference = Reference.of(data, FeatureSpaces.load(features_path))
    result = {
        "dataset": Path(data_path).stem,
        "samples_file": str(samples_path),
        "test_images": len(reference.test),
        "test_diversity": diversity(reference.test_features["learned"]),
        "model": measure(samples[:size], reference),
    }
    write_text(out, json.dumps(result, indent=2) + "\n")
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


def better_by(metric: str, first: dict, second: dict) -> tuple[float, float]:
    """How much better `first` is than `second` by `metric` (negative: worse), and its SE."""
    gap = first["value"] - second["value"]
    if METRICS[metric][0] == "lower":
        gap = -gap
    return gap, math.hypot(first["se"], second["se"])


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


def check(data_path, features_path, n: int, out) -> dict:
    """Measure the reference sets whose ranking is known, and judge every metric by them."""
    data = load_dataset(data_path)
    spaces = FeatureSpaces.load(features_path)
    reference = Reference.of(data, spaces)
    size = set_size(n, data)
    rng = np.random.default_rng(0)
    real = data.valid[np.sort(rng.choice(len(data.valid), size, replace=False))]
    dropped, matched, dropped_mode = mode_dropped(data, spaces, size)
    sets = {
        REAL: real,
        GAUSSIAN: gaussian_images(data, size),
        # blurring binary images is a majority filter that cleans them: not known to be worse
        **({BLURRED: blurred(real)} if data.levels > 2 else {}),
        **{
            name: noisy(real, f, data.levels, i)
            for i, (name, f) in enumerate(zip(NOISY, NOISE, strict=True))
        },
        DROPPED: dropped,
        MATCHED: matched,
        COPIES: data.train[rng.choice(len(data.train), size, replace=False)],
    }
    measured = {}
    for name, images in sets.items():
        measured[name] = measure(images, reference)
        measured[name].pop("nearest_train_index")
        log.info("check set %s: %s", name, summary_line(measured[name]))
    copies, reals = measured[COPIES], measured[REAL]
    result = {
        "dataset": Path(data_path).stem,
        "images_per_set": size,
        "test_images": len(reference.test),
        "dropped_mode": dropped_mode,
        "features": spaces.summary,
        "sets": measured,
        "metrics": {metric: judge(metric, measured) for metric in METRICS},
        "copies_flagged": bool(
            copies["copied_fraction"] == 1.0
            and copies["novelty"]["value"] == 0.0
            and reals["novelty"]["value"] > 0
        ),
    }
    write_text(out, json.dumps(result, indent=2) + "\n")
    passed = [m for m, v in result["metrics"].items() if v["passed"]]
    log.info("%s: metrics that pass their checks: %s", data_path, ", ".join(passed) or "none")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sample-quality measurements.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--features", required=True, help="the dataset's features file")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--samples", help="a model's samples (.npz) to measure")
    what.add_argument("--check", action="store_true", help="measure the known-answer sets")
    parser.add_argument(
        "--n",
        type=positive_int,
        default=500,
        help="images a set (at most the valid images)",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.check:
        return run_stage(
            f"metric check on {args.data}",
            lambda: check(args.data, args.features, args.n, args.out),
        )
    return run_stage(
        f"quality of {args.samples}",
        lambda: assess(args.data, args.features, args.samples, args.n, args.out),
    )


if __name__ == "__main__":
    sys.exit(main())
