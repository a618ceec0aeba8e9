"""Mixture baselines: a Gaussian mixture (continuous, so its likelihood is a bound) and a mixture
of Bernoullis (binary data, exact likelihood).

GMM: scikit-learn `GaussianMixture` on y = (x + u) / L with u ~ U[0, 1)^D (uniform
dequantization). For the discrete x, log P(x) = log E_u p((x+u)/L) - D log L
>= E_u log p((x+u)/L) - D log L (Jensen), so the reported NLL is an upper bound.
Mixture of Bernoullis: EM as in Bishop (2006), section 9.3.3; the mixture baseline of the
NADE paper (137.64 nats on binarized MNIST).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from arbench.models.base import as_long_tensor, checkpoint

log = logging.getLogger(__name__)

GMM_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_")


class GMM:
    """Gaussian mixture on dequantized pixels; `log_prob` is a lower bound on log P(x)."""

    name = "gmm"
    exact = False
    defaults = {
        "components": 10,
        "covariance": "diag",
        "max_iter": 100,
        "dequant_samples": 4,
        "reg_covar": 1e-4,
        "seed": 0,
    }

    def __init__(self, shape, levels: int, config: dict | None = None):
        self.shape = tuple(int(s) for s in shape)
        self.levels = int(levels)
        self.dims = int(np.prod(self.shape))
        self.config = {**self.defaults, **(config or {})}
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


class MixtureOfBernoullis:
    """K product-of-Bernoulli components fitted by EM; exact log-likelihood on binary data."""

    name = "mob"
    exact = True
    defaults = {"components": 100, "max_iter": 50, "tol": 1e-4, "smoothing": 1e-2, "seed": 0}

    def __init__(self, shape, levels: int, config: dict | None = None):
        if levels != 2:
            raise ValueError(f"a mixture of Bernoullis needs binary data, got {levels} levels")
        self.shape = tuple(int(s) for s in shape)
        self.levels = 2
        self.dims = int(np.prod(self.shape))
        self.config = {**self.defaults, **(config or {})}
        self.log_weights = torch.full(
            (self.config["components"],), -math.log(self.config["components"])
        )
        self.probs = torch.full((self.config["components"], self.dims), 0.5, dtype=torch.float64)

    def _component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log p(x | k), shape (N, K)."""
        log_p, log_q = torch.log(self.probs), torch.log1p(-self.probs)
        return x @ (log_p - log_q).t() + log_q.sum(1) + self.log_weights

    def fit(self, train, valid=None) -> dict:
        x = as_long_tensor(train).double()
        generator = torch.Generator().manual_seed(self.config["seed"])
        start = torch.randperm(len(x), generator=generator)[: self.config["components"]]
        alpha = self.config["smoothing"]
        self.probs = (x[start] + alpha) / (1 + 2 * alpha)
        previous, iterations = -math.inf, 0
        while iterations < self.config["max_iter"]:
            iterations += 1
            joint = self._component_log_prob(x)
            total = torch.logsumexp(joint, 1)
            mean_ll = float(total.mean())
            responsibilities = torch.exp(joint - total[:, None])
            counts = responsibilities.sum(0)
            self.log_weights = torch.log(counts / len(x))
            self.probs = (responsibilities.t() @ x + alpha) / (counts[:, None] + 2 * alpha)
            if mean_ll - previous < self.config["tol"]:
                break
            previous = mean_ll
        log.info("mixture of Bernoullis: %d EM iterations, train NLL %.2f", iterations, -mean_ll)
        return {"iterations": iterations, "train_nll": -mean_ll}

    def log_prob(self, x) -> torch.Tensor:
        return torch.logsumexp(self._component_log_prob(as_long_tensor(x).double()), 1)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        generator = torch.Generator().manual_seed(seed)
        component = torch.multinomial(
            torch.exp(self.log_weights), n, replacement=True, generator=generator
        )
        draws = (
            torch.rand(n, self.dims, generator=generator, dtype=torch.float64)
            < self.probs[component]
        )
        return draws.numpy().astype(np.uint8).reshape(n, *self.shape)

    def to_checkpoint(self) -> dict:
        return checkpoint(self, {"log_weights": self.log_weights, "probs": self.probs})

    @classmethod
    def from_checkpoint(cls, checkpoint: dict):
        model = cls(checkpoint["shape"], checkpoint["levels"], checkpoint["config"])
        model.log_weights = checkpoint["state"]["log_weights"]
        model.probs = checkpoint["state"]["probs"]
        return model
