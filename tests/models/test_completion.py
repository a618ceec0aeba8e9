"""Completing hidden pixels: conditional probabilities over every completion sum to one, the
observed pixels are never changed, and completions follow the conditional probabilities."""

import itertools

import numpy as np
import pytest
from scipy.stats import chisquare, multivariate_normal

from arbench.complete import hidden_region
from arbench.models.conditional import PixelGaussianMixture
from arbench.models.gmm import GMM, DiagonalGMM
from arbench.models.made import MADE
from arbench.models.mob import MixtureOfBernoullis
from arbench.models.nade import NADE
from arbench.models.pca_gmm import PCAGMM
from arbench.models.pixelcnn import PixelCNN

SHAPE = (1, 2, 2)  # the bottom row (2 pixels) hidden
HIDDEN = hidden_region(SHAPE, 0.5)
DRAWS = 8000


def training_images(levels, n=400, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, levels, (3, 4))
    x = np.clip(base[rng.integers(0, 3, n)] + rng.integers(-1, 2, (n, 4)), 0, levels - 1)
    return x.astype(np.uint8).reshape(n, *SHAPE)


def exact_models(scrambled):
    """(model, levels) for every model whose completion is exact."""
    mob = MixtureOfBernoullis(SHAPE, 2, {"components": 3, "max_iter": 20})
    mob.fit(training_images(2))
    diag = DiagonalGMM(SHAPE, 3, {"components": 3})
    diag.fit(training_images(3))
    return {
        "nade": (scrambled(NADE, SHAPE, 2, {"hidden": 5}), 2),
        "nade-categorical": (scrambled(NADE, SHAPE, 3, {"hidden": 5, "output": "categorical"}), 3),
        "made-masks": (scrambled(MADE, SHAPE, 2, {"hidden": [8], "masks": 3}), 2),
        "made-logistic": (
            scrambled(MADE, SHAPE, 4, {"hidden": [8], "output": "logistic_mixture"}),
            4,
        ),
        "pixelcnn": (scrambled(PixelCNN, SHAPE, 2, {"channels": 6, "head": 6, "layers": 2}), 2),
        "pixelcnn-categorical": (
            scrambled(PixelCNN, SHAPE, 3, {"channels": 6, "head": 6, "output": "categorical"}),
            3,
        ),
        "mob": (mob, 2),
        "gmm_diag": (diag, 3),
    }


def completions_of(observed: np.ndarray, levels: int) -> np.ndarray:
    """Every image with the observed top row and any bottom row."""
    rows = list(itertools.product(range(levels), repeat=2))
    images = np.zeros((len(rows), 4), np.uint8)
    images[:, ~HIDDEN] = observed
    images[:, HIDDEN] = rows
    return images.reshape(-1, *SHAPE)


@pytest.fixture
def models(scrambled):
    return exact_models(scrambled)


EXACT = [
    "nade",
    "nade-categorical",
    "made-masks",
    "made-logistic",
    "pixelcnn",
    "pixelcnn-categorical",
    "mob",
    "gmm_diag",
]


@pytest.mark.parametrize("name", EXACT)
def test_conditional_probabilities_over_every_completion_sum_to_one(models, name):
    model, levels = models[name]
    for observed in itertools.product(range(levels), repeat=2):
        log_p, exact = model.conditional_log_prob(
            completions_of(np.array(observed), levels), HIDDEN
        )
        assert exact
        assert np.exp(np.asarray(log_p, dtype=np.float64)).sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", EXACT)
def test_completions_keep_the_observed_pixels_and_follow_the_conditional(models, name):
    model, levels = models[name]
    observed = np.array([1, 0])
    image = completions_of(observed, levels)[:1]
    filled = model.complete(image, HIDDEN, DRAWS, seed=7)
    assert filled.shape == (1, DRAWS, *SHAPE) and filled.dtype == np.uint8
    flat = filled.reshape(DRAWS, -1)
    assert np.all(flat[:, ~HIDDEN] == observed)
    candidates = completions_of(observed, levels)
    expected = np.exp(np.asarray(model.conditional_log_prob(candidates, HIDDEN)[0], dtype=float))
    codes = flat[:, HIDDEN].astype(np.int64) @ np.array([levels, 1])
    counts = np.bincount(codes, minlength=levels**2)
    result = chisquare(counts, expected * DRAWS / expected.sum())
    assert result.pvalue > 1e-3, f"chi-square {result.statistic:.1f}, p={result.pvalue:.2g}"


def test_a_random_ordering_is_refused_by_name(scrambled):
    model = scrambled(NADE, SHAPE, 2, {"hidden": 5, "ordering": "random", "seed": 3})
    images = completions_of(np.array([0, 1]), 2)
    assert sorted(model.test_orders[0].tolist()[:2]) != [0, 1]  # a hidden pixel comes early
    with pytest.raises(ValueError, match="does not order the observed pixels before"):
        model.conditional_log_prob(images, HIDDEN)


@pytest.mark.parametrize("rows", [0.0, 1.0, 0.1, 0.95])
def test_a_region_of_nothing_or_everything_is_refused(rows):
    with pytest.raises(ValueError, match="hides|fraction in"):
        hidden_region((1, 4, 4), rows)


def test_the_pixel_mixture_conditional_is_the_gaussian_one():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    covariance = a @ a.T + np.eye(4)
    mean = rng.normal(size=4)
    mixture = PixelGaussianMixture(np.array([1.0]), mean[None], covariance[None])
    hidden = np.array([False, False, True, True])
    y = rng.normal(size=(5, 4))
    joint = multivariate_normal(mean, covariance).logpdf(y)
    marginal = multivariate_normal(mean[:2], covariance[:2, :2]).logpdf(y[:, :2])
    np.testing.assert_allclose(mixture.conditional_log_density(y, hidden), joint - marginal)
    drawn = mixture.sample_hidden(np.repeat(y[:1], 1, 0), hidden, 20_000, rng)[0]
    gain = covariance[2:, :2] @ np.linalg.inv(covariance[:2, :2])
    expected_mean = mean[2:] + gain @ (y[0, :2] - mean[:2])
    expected_cov = covariance[2:, 2:] - gain @ covariance[:2, 2:]
    np.testing.assert_allclose(drawn.mean(0), expected_mean, atol=0.05)
    np.testing.assert_allclose(np.cov(drawn, rowvar=False), expected_cov, atol=0.08)


@pytest.mark.parametrize("cls", [GMM, PCAGMM])
def test_full_mixtures_complete_on_the_support_and_label_their_estimate(cls):
    train = training_images(4, n=300)
    model = cls(SHAPE, 4, {"components": 2, "reg_covar": 0.05})
    model.fit(train)
    log_p, exact = model.conditional_log_prob(train[:20], HIDDEN)
    assert not exact and np.all(np.isfinite(log_p))
    filled = model.complete(train[:3], HIDDEN, 5, seed=2)
    assert filled.shape == (3, 5, *SHAPE) and filled.max() <= 3
    assert np.all(
        filled.reshape(3, 5, -1)[:, :, ~HIDDEN] == train[:3].reshape(3, 1, -1)[:, :, ~HIDDEN]
    )
