"""Independent pixels as a network: a logit per pixel and value, trained by arbench's shared
trainer (minibatches, early stopping on the valid NLL, checkpoints that resume) through `nll`."""

from __future__ import annotations

import math

import torch

from independent_pixels import pixels


class IndependentPixelsNet(torch.nn.Module):
    """p(x) = prod_d softmax(logits_d)[x_d]. No `family`: the config that names it says which
    side of the study it stands on."""

    exact = True
    # its training settings' defaults, where arbench's do not suit it (one parameter a value)
    defaults = {"lr": 0.05, "epochs": 100, "init_scale": 0.0}

    def __init__(self, shape, levels: int, settings: dict):
        super().__init__()
        self.shape = tuple(shape)
        generator = torch.Generator().manual_seed(settings["seed"])
        start = settings["init_scale"] * torch.randn(
            math.prod(self.shape), levels, generator=generator
        )
        self.logits = torch.nn.Parameter(start)

    def log_probs(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, 1)

    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        return -pixels.pixel_log_probs(self.log_probs(), batch).sum(1)

    def log_prob(self, images: torch.Tensor) -> torch.Tensor:
        return pixels.pixel_log_probs(self.log_probs(), images).sum(1)

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return pixels.draw(self.log_probs(), n, seed, self.shape)

    def conditional_log_prob(self, images, hidden):
        return pixels.hidden_log_prob(self.log_probs(), images, hidden), True

    def complete(self, images, hidden, count: int, seed: int) -> torch.Tensor:
        return pixels.complete(self.log_probs(), images, hidden, count, seed)
