"""What both models share: the log-probability of each pixel's value under a table of
log-probabilities (one row a pixel, one column a value), drawing from it, and completing."""

from __future__ import annotations

import torch


def pixel_log_probs(log_probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(N, D): log p(value of pixel d) of every pixel of `images` (N, C, H, W)."""
    flat = images.reshape(len(images), -1)
    return log_probs.gather(1, flat.t()).t()


def draw(log_probs: torch.Tensor, n: int, seed: int, shape) -> torch.Tensor:
    """`n` images (n, C, H, W): every pixel drawn from its own distribution."""
    generator = torch.Generator().manual_seed(seed)
    probs = log_probs.detach().double().exp().cpu()
    drawn = torch.multinomial(probs, n, replacement=True, generator=generator)  # (D, n)
    return drawn.t().reshape(n, *shape).to(torch.uint8)


def complete(log_probs, images, hidden, count: int, seed: int) -> torch.Tensor:
    """(N, count, C, H, W): the hidden pixels drawn, the others kept; pixels are independent,
    so the observed ones change nothing of the hidden ones' distribution."""
    shape = tuple(images.shape[1:])
    drawn = draw(log_probs, len(images) * count, seed, shape).reshape(len(images), count, *shape)
    kept = images.cpu()[:, None].expand(-1, count, -1, -1, -1).to(torch.uint8)
    return torch.where(hidden.cpu(), drawn, kept)


def hidden_log_prob(log_probs, images, hidden) -> torch.Tensor:
    """log p(hidden pixels | the others) of each image: the hidden pixels' own, exactly."""
    return pixel_log_probs(log_probs, images)[:, hidden.reshape(-1)].sum(1)
