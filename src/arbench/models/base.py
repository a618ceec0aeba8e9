"""The one interface every model follows, and checkpoint-safe saving.

`log_prob(x)` takes integer images (N, C, H, W) on the dataset's levels and returns the log
probability of each image in nats (exact, or a bound where `exact` is False); `sample(n, seed)`
returns uint8 images on the same support. Models save and load through plain dicts of tensors
and numbers, readable with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def as_long_tensor(x, device=None) -> torch.Tensor:
    """Images (N, C, H, W) of any integer type -> long tensor (N, D) on `device`."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    return x.reshape(len(x), -1).to(device=device, dtype=torch.long)


def natural_order(shape: tuple[int, int, int]) -> torch.Tensor:
    """Raster order over pixels, channels innermost: R, G, B of one pixel come together."""
    channels, height, width = shape
    index = torch.arange(channels * height * width).reshape(channels, height, width)
    return index.permute(1, 2, 0).reshape(-1)


def make_order(shape, ordering: str, seed: int) -> torch.Tensor:
    if ordering == "natural":
        return natural_order(shape)
    if ordering == "random":
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(int(np.prod(shape)), generator=generator)
    raise ValueError(f"unknown ordering {ordering!r}; expected natural or random")


def log_mean_exp(log_probs: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log mean_k exp(log_probs[k]): the log-likelihood of a uniform ensemble."""
    return torch.logsumexp(log_probs, dim=dim) - math.log(log_probs.shape[dim])


class NeuralDensityModel(torch.nn.Module):
    """Base of NADE and MADE: a torch module over flattened images with exact likelihoods."""

    exact = True
    name = "neural"

    def __init__(self, shape, levels: int, config: dict):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.levels = int(levels)
        self.dims = int(np.prod(self.shape))
        self.config = dict(config)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels -> network inputs in [0, 1]."""
        return x.to(torch.float32) / (self.levels - 1)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """Training loss per image (nats) on long (B, D) input; may use a random ordering/mask."""
        raise NotImplementedError

    def log_prob(self, x) -> torch.Tensor:
        """Exact log p(x) in nats per image (the ensemble where the model has one)."""
        raise NotImplementedError

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        raise NotImplementedError

    def to_checkpoint(self) -> dict:
        return {
            "model": self.name,
            "shape": list(self.shape),
            "levels": self.levels,
            "config": self.config,
            "state": self.state_dict(),
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict):
        model = cls(checkpoint["shape"], checkpoint["levels"], checkpoint["config"])
        model.load_state_dict(checkpoint["state"])
        return model
