"""Mixtures conditioned on observed pixels: a posterior over components from the observed part,
then the hidden part from each component.

For a mixture whose components make pixels independent (a mixture of Bernoullis, a diagonal
Gaussian mixture on pixel bins) the conditional probability of the hidden part is exact:
log P(x_h | x_o) = log sum_k w_k P_k(x) - log sum_k w_k P_k(x_o). For a Gaussian mixture with full
covariances in pixel space (the full and PCA mixtures) the same ratio of densities is taken on
dequantized pixels, and the hidden part is drawn from each component's conditional Gaussian.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def discrete_conditional(log_weights: np.ndarray, pixel_log_probs: np.ndarray, hidden) -> tuple:
    """(log P(x_h | x_o) per image, the component posterior given x_o (B, K)) from per-component,
    per-pixel log-probabilities (K, B, D) of independent pixels."""
    joint = log_weights[:, None] + pixel_log_probs.sum(2)
    observed = log_weights[:, None] + pixel_log_probs[:, :, ~hidden].sum(2)
    marginal = logsumexp(observed, axis=0)
    return logsumexp(joint, axis=0) - marginal, np.exp(observed - marginal).T


def choose_components(posterior: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """(B, count) components drawn from each image's posterior (B, K)."""
    cumulative = np.cumsum(posterior, axis=1)
    draws = rng.random((len(posterior), count)) * cumulative[:, -1:]
    return np.minimum((draws[:, :, None] >= cumulative[:, None, :]).sum(2), posterior.shape[1] - 1)


class PixelGaussianMixture:
    """A Gaussian mixture with full covariances over all pixels, for conditioning."""

    def __init__(self, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray):
        self.log_weights = np.log(weights)
        self.means = means
        self.covariances = covariances

    def _log_density(self, y: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """(K, B) log N(y[:, keep]; mean_k[keep], cov_k[keep, keep])."""
        out = []
        for mean, covariance in zip(self.means, self.covariances, strict=True):
            sub = covariance[np.ix_(keep, keep)]
            cholesky = np.linalg.cholesky(sub)
            solved = np.linalg.solve(cholesky, (y[:, keep] - mean[keep]).T)
            log_det = 2 * np.log(np.diag(cholesky)).sum()
            out.append(-0.5 * ((solved**2).sum(0) + log_det + keep.sum() * np.log(2 * np.pi)))
        return np.stack(out)

    def conditional_log_density(self, y: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        """log p(y_h | y_o) per row of y (B, D)."""
        everything = np.ones(len(hidden), dtype=bool)
        joint = logsumexp(self.log_weights[:, None] + self._log_density(y, everything), axis=0)
        observed = logsumexp(self.log_weights[:, None] + self._log_density(y, ~hidden), axis=0)
        return joint - observed

    def sample_hidden(
        self, y: np.ndarray, hidden: np.ndarray, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        """(B, count, hidden pixels) drawn from p(y_h | y_o) for each row of y."""
        observed = ~hidden
        log_joint = self.log_weights[:, None] + self._log_density(y, observed)
        posterior = np.exp(log_joint - logsumexp(log_joint, axis=0)).T  # (B, K)
        components = choose_components(posterior, count, rng)
        out = np.empty((len(y), count, hidden.sum()))
        for k, (mean, covariance) in enumerate(zip(self.means, self.covariances, strict=True)):
            rows, draws = np.nonzero(components == k)
            if not len(rows):
                continue
            oo = covariance[np.ix_(observed, observed)]
            ho = covariance[np.ix_(hidden, observed)]
            gain = np.linalg.solve(oo, ho.T).T  # Sigma_ho Sigma_oo^-1
            conditional = covariance[np.ix_(hidden, hidden)] - gain @ ho.T
            shift = (y[rows][:, observed] - mean[observed]) @ gain.T
            conditional = (conditional + conditional.T) / 2
            jitter = 1e-10 * np.trace(conditional) / len(conditional)  # rounding, not a change
            cholesky = np.linalg.cholesky(conditional + jitter * np.eye(len(conditional)))
            noise = rng.standard_normal((len(rows), hidden.sum())) @ cholesky.T
            out[rows, draws] = mean[hidden] + shift + noise
        return out
