"""Per-dimension output distributions shared by NADE and MADE.

Each turns K raw parameters per dimension into a distribution over the discrete levels
0..levels-1 and gives exact log-probabilities and samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class Distribution:
    """What every per-dimension distribution gives: log-probabilities and samples."""

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob_sum(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x) summed over the last dimension of x (the pixels of an image)."""
        return self.log_prob(params, x).sum(-1)


class Bernoulli(Distribution):
    """Binary data: one logit per dimension."""

    def __init__(self, levels: int = 2):
        if levels != 2:
            raise ValueError(f"Bernoulli output needs 2 levels, got {levels}")
        self.levels = 2
        self.params_per_dim = 1

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """params (..., 1), x (...) integer -> log p(x) (...)."""
        return -self._negative(params, x)

    def log_prob_sum(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x) summed over the last dimension of x; negated after the sum, not before."""
        return -self._negative(params, x).sum(-1)

    @staticmethod
    def _negative(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """softplus(logit) - x logit, in one fused operation."""
        logit = params[..., 0]
        return F.binary_cross_entropy_with_logits(logit, x.to(logit.dtype), reduction="none")

    def sample(self, params: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        probability = torch.sigmoid(params[..., 0])
        uniform = torch.rand(probability.shape, generator=generator, device=probability.device)
        return (uniform < probability).long()


class Categorical(Distribution):
    """A free probability per level: exact and simple, sized for few levels."""

    def __init__(self, levels: int):
        self.levels = levels
        self.params_per_dim = levels

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(params, -1).gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        flat = torch.softmax(params.reshape(-1, self.levels), -1)
        return torch.multinomial(flat, 1, generator=generator).reshape(params.shape[:-1])


def _log1mexp(z: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(z)) for z <= 0, accurate at both ends (Mächler 2012)."""
    return torch.where(z > -math.log(2), torch.log(-torch.expm1(z)), torch.log1p(-torch.exp(z)))


def log_sigmoid_difference(upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(upper) - sigmoid(lower)) for upper > lower, stable in both tails."""
    # Right of zero both sigmoids near 1: use sigmoid(-lower) - sigmoid(-upper) instead.
    right = (upper + lower) > 0
    hi = torch.where(right, -lower, upper)
    lo = torch.where(right, -upper, lower)
    log_hi = F.logsigmoid(hi)
    return log_hi + _log1mexp(torch.clamp(F.logsigmoid(lo) - log_hi, max=-1e-12))


class DiscretizedLogisticMixture(Distribution):
    """A mixture of `components` logistics discretized onto the levels (Salimans et al. 2017).

    Levels map to bin centres in [-1, 1]; the outermost bins extend to infinity, so the bin
    probabilities sum to one exactly. 3 * components parameters per dimension, whatever `levels`.
    """

    min_log_scale = -7.0

    def __init__(self, levels: int, components: int = 5):
        self.levels = levels
        self.components = components
        self.params_per_dim = 3 * components

    def _split(self, params: torch.Tensor):
        logits, means, log_scales = params.split(self.components, dim=-1)
        return logits, means, torch.clamp(log_scales, min=self.min_log_scale)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logits, means, log_scales = self._split(params)
        half_bin = 1.0 / (self.levels - 1)
        centre = (x.to(params.dtype) * 2 * half_bin - 1).unsqueeze(-1)
        inverse_scale = torch.exp(-log_scales)
        upper = (centre + half_bin - means) * inverse_scale
        lower = (centre - half_bin - means) * inverse_scale
        is_first = (x == 0).unsqueeze(-1)
        is_last = (x == self.levels - 1).unsqueeze(-1)
        # Edge bins: P(y < c + h) = sigmoid(upper) and P(y > c - h) = sigmoid(-lower).
        upper = torch.where(is_last, torch.full_like(upper, 1e4), upper)
        lower = torch.where(is_first, torch.full_like(lower, -1e4), lower)
        log_bin = log_sigmoid_difference(upper, lower)
        return torch.logsumexp(torch.log_softmax(logits, -1) + log_bin, dim=-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        logits, means, log_scales = self._split(params)
        flat = torch.softmax(logits.reshape(-1, self.components), -1)
        choice = torch.multinomial(flat, 1, generator=generator).reshape(logits.shape[:-1] + (1,))
        mean = means.gather(-1, choice).squeeze(-1)
        scale = torch.exp(log_scales.gather(-1, choice).squeeze(-1))
        uniform = torch.rand(mean.shape, generator=generator, device=mean.device)
        uniform = uniform.clamp(1e-6, 1 - 1e-6)
        y = mean + scale * (torch.log(uniform) - torch.log1p(-uniform))
        level = torch.round((y + 1) / 2 * (self.levels - 1))
        return level.clamp(0, self.levels - 1).long()


def make_output(levels: int, kind: str = "auto", components: int = 5):
    """`auto`: Bernoulli for 2 levels, categorical up to 16, a logistic mixture beyond."""
    if kind == "auto":
        kind = "bernoulli" if levels == 2 else "categorical" if levels <= 16 else "logistic_mixture"
    if kind == "bernoulli":
        return Bernoulli(levels)
    if kind == "categorical":
        return Categorical(levels)
    if kind == "logistic_mixture":
        return DiscretizedLogisticMixture(levels, components)
    raise ValueError(
        f"unknown output distribution {kind!r}; expected auto, bernoulli, categorical "
        "or logistic_mixture"
    )
