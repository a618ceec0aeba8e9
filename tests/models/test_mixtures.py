import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, norm

from arbench.core.plan import model_from_checkpoint as from_checkpoint
from arbench.models.gmm import GMM, DiagonalGMM, log_normal_mass
from arbench.models.mob import MixtureOfBernoullis
from arbench.models.pca_gmm import PCAGMM


def every_image(dims: int, levels: int) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(levels)] * dims, indexing="ij"), -1)
    return grid.reshape(-1, 1, 1, dims).astype(np.uint8)


def clustered(levels=4, n=800, dims=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, levels, (3, dims))
    x = np.clip(centres[rng.integers(0, 3, n)] + rng.integers(-1, 2, (n, dims)), 0, levels - 1)
    return x.astype(np.uint8).reshape(-1, 1, 1, dims)


def scipy_log_prob(model: GMM, x: np.ndarray) -> np.ndarray:
    """log P(x) bin by bin with scipy's normal CDF (edge bins open): the reference."""
    mixture, levels = model.mixture, model.levels
    x = x.reshape(len(x), -1).astype(np.float64)
    lower = np.where(x == 0, -np.inf, x / levels)
    upper = np.where(x == levels - 1, np.inf, (x + 1) / levels)
    terms = []
    for weight, mean, variance in zip(
        mixture.weights_, mixture.means_, mixture.covariances_, strict=True
    ):
        sd = np.sqrt(np.broadcast_to(variance, mean.shape))
        mass = norm.cdf(upper, mean, sd) - norm.cdf(lower, mean, sd)
        terms.append(math.log(weight) + np.log(mass).sum(1))
    return np.logaddexp.reduce(np.stack(terms), axis=0)


@pytest.mark.parametrize("covariance", ["diag", "spherical"])
def test_exact_gmm_probabilities_over_every_image_sum_to_one(covariance):
    train = clustered(levels=3, dims=4)
    model = DiagonalGMM((1, 1, 4), 3, {"components": 3, "covariance": covariance})
    model.fit(train)
    assert model.exact
    total = torch.logsumexp(model.log_prob(every_image(4, 3)), 0).exp().item()
    assert total == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(
        model.log_prob(train[:50]).numpy(), scipy_log_prob(model, train[:50]), rtol=1e-9
    )


def test_bin_masses_stay_accurate_far_in_the_tails():
    # A subtraction of CDFs gives 0 (log: -inf) this far out; the log-space form does not.
    lower = np.array([-40.0, 39.0, 8.0, -np.inf])
    upper = np.array([-39.0, 40.0, np.inf, -30.0])
    got = log_normal_mass(lower, upper)
    assert np.all(np.isfinite(got)) and got[0] == pytest.approx(got[1], rel=1e-12)  # symmetry
    expected = norm.logcdf(-39.0) + np.log1p(-np.exp(norm.logcdf(-40.0) - norm.logcdf(-39.0)))
    assert got[0] == pytest.approx(expected, rel=1e-9)
    assert got[2] == pytest.approx(norm.logsf(8.0), rel=1e-9)
    assert got[3] == pytest.approx(norm.logcdf(-30.0), rel=1e-9)


def test_the_exact_nll_is_never_above_the_dequantization_bound():
    train = clustered()
    model = DiagonalGMM((1, 1, 6), 4, {"components": 3, "dequant_samples": 256})
    model.fit(train)
    test = clustered(seed=1)[:200].reshape(200, -1)
    exact = -model.exact_log_prob(test)
    bound, monte_carlo = model.bound_log_prob(test)
    assert np.all(-bound >= exact - 4 * monte_carlo)  # per image, within its Monte Carlo error
    assert (-bound).mean() > exact.mean() + 0.01  # Jensen's gap is real for this data


def test_with_constant_pixels_the_bound_stays_a_bound():
    # Few images of many pixels, most of them constant: a full covariance fits the training
    # images' own dequantization noise, and a bound that reused that noise came out negative
    # (-957 nats once), impossible for discrete data. Evaluation draws its own noise.
    rng = np.random.default_rng(4)
    train = np.zeros((30, 1, 1, 40), np.uint8)
    train[:, 0, 0, :4] = rng.integers(0, 4, (30, 4))
    flat = train.reshape(len(train), -1)
    for covariance in ("full", "diag"):
        model = GMM((1, 1, 40), 4, {"components": 1, "covariance": covariance, "reg_covar": 1e-6})
        model.fit(train)
        reused = model.mixture.score_samples(model.dequantize(flat, model.noise(0)))
        bound, _ = model.bound_log_prob(flat)
        assert -bound.mean() >= 0  # an NLL of discrete data is never negative
        if covariance == "full":
            assert (reused - 40 * math.log(4)).mean() > 0  # what reusing the noise reported
        else:
            assert -bound.mean() >= -model.exact_log_prob(flat).mean()


def test_the_grid_is_searched_on_the_valid_split_and_recorded():
    train, valid = clustered(n=600), clustered(n=200, seed=5)
    model = GMM((1, 1, 6), 4, {"components": [1, 3], "reg_covar": [1e-3, 0.3]})
    fitted = model.fit(train, valid)
    assert len(fitted["grid"]) == 4
    best = min(fitted["grid"], key=lambda row: row["valid_nll"])
    assert fitted["chosen"] == {"components": best["components"], "reg_covar": best["reg_covar"]}
    assert -model.log_prob(valid).mean().item() == pytest.approx(best["valid_nll"], rel=1e-9)
    restored = from_checkpoint(model.to_checkpoint())
    assert restored.chosen == model.chosen
    np.testing.assert_array_equal(restored.sample(10, seed=2), model.sample(10, seed=2))


def test_gmm_samples_are_on_the_support_and_round_trip():
    rng = np.random.default_rng(1)
    train = rng.integers(0, 8, (300, 1, 3, 3)).astype(np.uint8)
    model = GMM((1, 3, 3), 8, {"components": 2, "reg_covar": 0.01})
    model.fit(train)
    samples = model.sample(500, seed=3)
    assert samples.dtype == np.uint8 and samples.shape == (500, 1, 3, 3) and samples.max() <= 7
    restored = from_checkpoint(model.to_checkpoint())
    torch.testing.assert_close(restored.log_prob(train[:20]), model.log_prob(train[:20]))


def test_pca_gmm_density_is_the_gaussian_it_stands_for():
    # One whitened component is one Gaussian: in pixel space its covariance is the kept
    # directions' covariance plus the residual variance everywhere else.
    rng = np.random.default_rng(2)
    train = (rng.random((400, 1, 1, 8)) * rng.integers(1, 8, 8) / 8 * 16).astype(np.uint8)
    model = PCAGMM((1, 1, 8), 16, {"variance": 0.8, "components": 1, "reg_covar": 1e-6})
    fitted = model.fit(train)
    kept = fitted["principal_components"]
    assert 0 < kept < 8 and fitted["variance_kept"] >= 0.8
    basis, scale = model.basis, model.scale
    inner = np.atleast_2d(model.mixture.covariances_[0])
    covariance = (basis.T * scale) @ inner @ (scale[:, None] * basis)
    covariance += model.residual_variance * (np.eye(8) - basis.T @ basis)
    mean = model.mean + (model.mixture.means_[0] * scale) @ basis
    y = rng.random((20, 8))
    expected = multivariate_normal(mean, covariance).logpdf(y)
    np.testing.assert_allclose(model.density(y), expected, rtol=1e-6)


def test_pca_gmm_samples_round_trip_and_bad_variance_is_refused():
    rng = np.random.default_rng(3)
    train = rng.integers(0, 4, (300, 1, 2, 3)).astype(np.uint8)
    model = PCAGMM((1, 2, 3), 4, {"variance": 0.9, "components": 2})
    model.fit(train, train[:50])
    assert not model.exact
    samples = model.sample(100, seed=1)
    assert samples.shape == (100, 1, 2, 3) and samples.max() <= 3
    restored = from_checkpoint(model.to_checkpoint())
    torch.testing.assert_close(restored.log_prob(train[:20]), model.log_prob(train[:20]))
    np.testing.assert_array_equal(restored.sample(10, seed=2), model.sample(10, seed=2))
    for variance in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"variance must be a fraction in \(0, 1\]"):
            PCAGMM((1, 2, 3), 4, {"variance": variance})


def test_mixture_of_bernoullis_recovers_components_and_refuses_levels():
    rng = np.random.default_rng(2)
    prototypes = np.array([[0.95] * 4 + [0.05] * 4, [0.05] * 4 + [0.95] * 4])
    labels = rng.integers(0, 2, 2000)
    data = (rng.random((2000, 8)) < prototypes[labels]).astype(np.uint8).reshape(-1, 1, 1, 8)
    model = MixtureOfBernoullis((1, 1, 8), 2, {"components": 2, "max_iter": 100})
    model.fit(data)
    found = np.sort(model.probs.numpy()[:, 0])
    np.testing.assert_allclose(found, [0.05, 0.95], atol=0.03)
    with pytest.raises(ValueError, match="needs binary images"):
        MixtureOfBernoullis((1, 1, 8), 4)


@pytest.mark.parametrize("cls", [GMM, DiagonalGMM, PCAGMM])
def test_fit_images_fits_em_to_a_random_subset_of_that_size(cls):
    x = clustered()
    whole = cls((1, 1, 6), 4, {"components": 2, "reg_covar": 0.1})
    part = cls((1, 1, 6), 4, {"components": 2, "reg_covar": 0.1, "fit_images": 100})
    assert len(part.fitted_images(x)) == 100 and len(whole.fitted_images(x)) == len(x)
    assert set(map(bytes, part.fitted_images(x))) <= set(map(bytes, x.reshape(len(x), -1)))
    part.fit(x)
    whole.fit(x)
    assert not np.allclose(part.mixture.means_, whole.mixture.means_)  # fitted to other images
    with pytest.raises(ValueError, match="more than the 100 training images"):
        cls((1, 1, 6), 4, {"components": 101, "fit_images": 100}).fit(x)
