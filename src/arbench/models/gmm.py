"""The Gaussian mixture baseline: continuous, so on discrete pixels its likelihood is a bound.

scikit-learn `GaussianMixture` on y = (x + u) / L with u ~ U[0, 1)^D (uniform dequantization).
For the discrete x, log P(x) = log E_u p((x+u)/L) - D log L >= E_u log p((x+u)/L) - D log L
(Jensen), so the reported NLL is an upper bound.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from arbench.models.base import checkpoint
from arbench.plan import architecture_settings

log = logging.getLogger(__name__)

GMM_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_")


class GMM:
    """Gaussian mixture on dequantized pixels; `log_prob` is a lower bound on log P(x)."""

    name = "gmm"
    exact = False

    def __init__(self, shape, levels: int, config: dict | None = None):
        self.shape = tuple(int(s) for s in shape)
        self.levels = int(levels)
        self.dims = int(np.prod(self.shape))
        self.config = architecture_settings(self.name, config)
        self.mixture = GaussianMixture(
            n_components=self.config["components"],
            covariance_type=self.config["covariance"],
            max_iter=self.config["max_iter"],
            reg_covar=self.config["reg_covar"],
            random_state=self.config["seed"],
        )

    def dequantize(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (x.astype(np.float64) + rng.random(x.shape)) / self.levels

    def fit(self, train, valid=None) -> dict:
        x = np.asarray(train).reshape(len(train), -1)
        self.mixture.fit(self.dequantize(x, np.random.default_rng(self.config["seed"])))
        log.info(
            "GMM converged=%s after %d EM iterations", self.mixture.converged_, self.mixture.n_iter_
        )
        return {"converged": bool(self.mixture.converged_), "iterations": int(self.mixture.n_iter_)}

    def log_prob(self, x, samples: int | None = None, seed: int = 0) -> torch.Tensor:
        """Lower bound on log P(x) in nats: E_u log p((x+u)/L) - D log L, over `samples` draws."""
        x = np.asarray(x).reshape(len(x), -1)
        rng = np.random.default_rng(seed)
        samples = samples or self.config["dequant_samples"]
        density = np.mean(
            [self.mixture.score_samples(self.dequantize(x, rng)) for _ in range(samples)], axis=0
        )
        return torch.from_numpy(density - self.dims * math.log(self.levels))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        self.mixture.random_state = seed
        y, _ = self.mixture.sample(n)
        rng = np.random.default_rng(seed)
        y = y[rng.permutation(n)]  # sklearn returns samples grouped by component
        levels = np.clip(np.floor(y * self.levels), 0, self.levels - 1)
        return levels.astype(np.uint8).reshape(n, *self.shape)

    def to_checkpoint(self) -> dict:
        state = {
            name: torch.from_numpy(np.asarray(getattr(self.mixture, name)))
            for name in GMM_ATTRIBUTES
        }
        return checkpoint(self, state)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict):
        model = cls(checkpoint["shape"], checkpoint["levels"], checkpoint["config"])
        for name, value in checkpoint["state"].items():
            setattr(model.mixture, name, value.numpy())
        return model
