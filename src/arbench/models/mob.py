"""The mixture of Bernoullis baseline: binary data, exact likelihood.

EM as in Bishop (2006), section 9.3.3; the mixture baseline of the NADE paper (137.64 nats on
binarized MNIST).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from arbench.core.plan import SettingsError, architecture_settings, binary_images
from arbench.models.base import as_long_tensor, check_components, checkpoint
from arbench.models.conditional import choose_components, discrete_conditional
from arbench.training.convergence import em_record

log = logging.getLogger(__name__)


class MixtureOfBernoullis:
    """K product-of-Bernoulli components fitted by EM; exact log-likelihood on binary data."""

    name = "mob"
    exact = True
    version = 1  # of what a saved state means (arbench.models.base.checkpoint)

    def __init__(self, shape, levels: int, config: dict | None = None):
        if problem := binary_images({}, levels):
            raise SettingsError(problem)
        self.shape = tuple(int(s) for s in shape)
        self.levels = 2
        self.dims = int(np.prod(self.shape))
        self.config = architecture_settings(self.name, config)
        self.log_weights = torch.full(
            (self.config["components"],), -math.log(self.config["components"])
        )
        self.probs = torch.full((self.config["components"], self.dims), 0.5, dtype=torch.float64)

    def _component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log p(x | k), shape (N, K)."""
        log_p, log_q = torch.log(self.probs), torch.log1p(-self.probs)
        return x @ (log_p - log_q).t() + log_q.sum(1) + self.log_weights

    def fit(self, train, valid=None) -> dict:
        check_components(self.name, self.config["components"], len(train))
        x = as_long_tensor(train).double()
        generator = torch.Generator().manual_seed(self.config["seed"])
        start = torch.randperm(len(x), generator=generator)[: self.config["components"]]
        alpha = self.config["smoothing"]
        self.probs = (x[start] + alpha) / (1 + 2 * alpha)
        log_likelihoods, converged = [], False
        while not converged and len(log_likelihoods) < self.config["max_iter"]:
            joint = self._component_log_prob(x)
            total = torch.logsumexp(joint, 1)
            log_likelihoods.append(float(total.mean()))
            responsibilities = torch.exp(joint - total[:, None])
            counts = responsibilities.sum(0)
            self.log_weights = torch.log(counts / len(x))
            self.probs = (responsibilities.t() @ x + alpha) / (counts[:, None] + 2 * alpha)
            converged = (
                len(log_likelihoods) > 1
                and log_likelihoods[-1] - log_likelihoods[-2] < self.config["tol"]
            )
        iterations, mean_ll = len(log_likelihoods), log_likelihoods[-1]
        log.info("mixture of Bernoullis: %d EM iterations, train NLL %.2f", iterations, -mean_ll)
        return {
            "iterations": iterations,
            "train_nll": -mean_ll,
            "training": em_record(converged, log_likelihoods),
        }

    def log_prob(self, x) -> torch.Tensor:
        return torch.logsumexp(self._component_log_prob(as_long_tensor(x).double()), 1)

    def pixel_log_probs(self, x: np.ndarray) -> np.ndarray:
        """(K, B, D): log p(x_d | component k) of every pixel."""
        probs = self.probs.numpy()[:, None, :]
        return np.where(x[None, :, :] == 1, np.log(probs), np.log1p(-probs))

    def conditional_log_prob(self, x, hidden) -> tuple[np.ndarray, bool]:
        """(log P(x_hidden | x_observed) per image, exact)."""
        x, hidden = np.asarray(x).reshape(len(x), -1), np.asarray(hidden)
        weights = self.log_weights.numpy()
        parts = [
            discrete_conditional(weights, self.pixel_log_probs(x[i : i + 256]), hidden)[0]
            for i in range(0, len(x), 256)
        ]
        return np.concatenate(parts), True

    def complete(self, x, hidden, count: int, seed: int = 0) -> np.ndarray:
        """(B, count, C, H, W): a component from its posterior given the observed pixels, then
        the hidden pixels from its Bernoullis."""
        x, hidden = np.asarray(x).reshape(len(x), -1), np.asarray(hidden)
        rng = np.random.default_rng(seed)
        _, posterior = discrete_conditional(
            self.log_weights.numpy(), self.pixel_log_probs(x), hidden
        )
        components = choose_components(posterior, count, rng)
        probs = self.probs.numpy()[components][:, :, hidden]
        out = np.repeat(x[:, None, :], count, axis=1)
        out[:, :, hidden] = rng.random(probs.shape) < probs
        return out.astype(np.uint8).reshape(len(x), count, *self.shape)

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
