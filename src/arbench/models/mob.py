"""The mixture of Bernoullis baseline: binary data, exact likelihood.

EM as in Bishop (2006), section 9.3.3; the mixture baseline of the NADE paper (137.64 nats on
binarized MNIST).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from arbench.models.base import as_long_tensor, checkpoint
from arbench.plan import architecture_settings

log = logging.getLogger(__name__)


class MixtureOfBernoullis:
    """K product-of-Bernoulli components fitted by EM; exact log-likelihood on binary data."""

    name = "mob"
    exact = True

    def __init__(self, shape, levels: int, config: dict | None = None):
        if levels != 2:
            raise ValueError(f"a mixture of Bernoullis needs binary data, got {levels} levels")
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
