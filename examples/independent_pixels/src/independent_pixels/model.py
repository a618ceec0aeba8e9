"""Independent pixels fitted in closed form: each pixel's value counts over the training images,
smoothed (the maximum a posteriori estimate under a symmetric Dirichlet prior)."""

from __future__ import annotations

import math

import torch

from independent_pixels import pixels


class IndependentPixels:
    """p(x) = prod_d p_d(x_d): one categorical distribution per pixel and channel."""

    family = "mixture"  # a mixture of one component (the config may place it otherwise)
    exact = True  # its log_prob is the exact discrete log-likelihood
    defaults = {"smoothing": 1.0}  # added to every value's count (0: unsmoothed)
    version = 1

    def __init__(self, shape, levels: int, settings: dict):
        self.shape, self.levels = tuple(shape), levels
        self.smoothing = settings["smoothing"]
        uniform = -math.log(levels)
        self.log_probs = torch.full((math.prod(self.shape), levels), uniform, dtype=torch.float64)

    def fit(self, train: torch.Tensor, valid: torch.Tensor) -> None:
        flat = train.reshape(len(train), -1).cpu().t()  # (D, N)
        counts = torch.zeros(len(flat), self.levels, dtype=torch.float64)
        counts.scatter_add_(1, flat, torch.ones(flat.shape, dtype=torch.float64))
        counts += self.smoothing
        self.log_probs = (counts / counts.sum(1, keepdim=True)).log()
        return None  # a closed form: nothing iterated, nothing left to gain

    def log_prob(self, images: torch.Tensor) -> torch.Tensor:
        return pixels.pixel_log_probs(self.log_probs, images.cpu()).sum(1)

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return pixels.draw(self.log_probs, n, seed, self.shape)

    def conditional_log_prob(self, images, hidden):
        return pixels.hidden_log_prob(self.log_probs, images.cpu(), hidden.cpu()), True

    def complete(self, images, hidden, count: int, seed: int) -> torch.Tensor:
        return pixels.complete(self.log_probs, images, hidden, count, seed)

    def state_dict(self) -> dict:
        return {"log_probs": self.log_probs}

    def load_state_dict(self, state: dict) -> None:
        self.log_probs = state["log_probs"]
