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


def check_components(model: str, components, images: int) -> None:
    """Refuse a mixture with more components than training images before fitting anything: each
    component needs images of its own (the fit would fail inside scikit-learn or PyTorch)."""
    largest = max(components) if isinstance(components, list) else components
    if largest > images:
        raise ValueError(
            f"{model} has components {components}, more than the {images} training images; "
            f"set `components` of {model} (under `models:` or the dataset's `overrides:`) to at "
            f"most {images}, or use a larger dataset"
        )


def checkpoint(model, state: dict) -> dict:
    """What every model saves: enough to rebuild it (name, shape, levels, config), its state, and
    the version of its code that wrote it (`arbench.training.checkpoints.load_model` refuses
    another)."""
    return {
        "model": model.name,
        "version": model.version,
        "shape": list(model.shape),
        "levels": model.levels,
        "config": model.config,
        "state": state,
    }


class NeuralDensityModel(torch.nn.Module):
    """Base of NADE, MADE and PixelCNN: a torch module over flattened images with exact
    likelihoods."""

    exact = True
    name = "neural"
    # what a saved state means: raise it when a change of the code reads old files differently
    version = 1

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

    # An ensemble of `members` (orderings, masks) with p(x) = mean_k p_k(x); one member is a
    # plain model. Subclasses give each member's exact log-likelihood and sampler.
    members: int
    eval_batch: int
    sample_batch: int = 1024

    def member_log_prob(self, x: torch.Tensor, member: int) -> torch.Tensor:
        raise NotImplementedError

    def sample_member(self, n: int, member: int, generator, given=None) -> torch.Tensor:
        """n images (n, D) in pixel order, drawn from one member; with `given` (values (n, D),
        known (D,) bool), the known pixels are taken from it instead of drawn."""
        raise NotImplementedError

    def member_order(self, member: int) -> torch.Tensor:
        """The pixel order of one member."""
        raise NotImplementedError

    def member_pixel_log_probs(self, x: torch.Tensor, member: int) -> torch.Tensor:
        """(B, D): log p(x_d | the pixels before d in the member's order), at pixel d."""
        raise NotImplementedError

    def check_completable(self, hidden: torch.Tensor) -> None:
        """Conditioning is exact only when every member orders the observed pixels first."""
        for member in range(self.members):
            rank = torch.empty_like(self.member_order(member))
            rank[self.member_order(member)] = torch.arange(self.dims, device=rank.device)
            if rank[~hidden].max() > rank[hidden].min():
                raise ValueError(
                    f"{self.name}'s member {member} does not order the observed pixels before "
                    "the hidden ones (ordering: random or order_agnostic): it cannot complete "
                    "images exactly; train it with ordering: natural to complete the bottom rows"
                )

    @torch.inference_mode()
    def conditional_log_prob(self, x, hidden) -> tuple[np.ndarray, bool]:
        """(log p(x_hidden | x_observed) per image, exact). For an ensemble it is the ratio of
        its mixtures, log sum_k p_k(x) - log sum_k p_k(x_observed), not an average of the
        members' conditionals."""
        x = as_long_tensor(x, self.device)
        hidden = torch.as_tensor(np.asarray(hidden), device=self.device)
        self.check_completable(hidden)
        totals, observed = [], []
        for member in range(self.members):
            per_pixel = torch.cat(
                [
                    self.member_pixel_log_probs(x[start : start + self.eval_batch], member)
                    for start in range(0, len(x), self.eval_batch)
                ]
            )
            totals.append(per_pixel.sum(1))
            observed.append(per_pixel[:, ~hidden].sum(1))
        joint = torch.logsumexp(torch.stack(totals), 0)
        return (joint - torch.logsumexp(torch.stack(observed), 0)).double().cpu().numpy(), True

    @torch.inference_mode()
    def complete(self, x, hidden, count: int, seed: int = 0) -> np.ndarray:
        """(B, count, C, H, W): `count` draws of the hidden pixels of each image given its
        observed ones, exact: a member drawn from its posterior given the observed pixels, then
        that member's sampler with the observed pixels held."""
        x = as_long_tensor(x, self.device)
        hidden = torch.as_tensor(np.asarray(hidden), device=self.device)
        self.check_completable(hidden)
        observed = torch.stack(
            [self.member_pixel_log_probs(x, k)[:, ~hidden].sum(1) for k in range(self.members)]
        )  # (members, B)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        posterior = torch.softmax(observed.t(), 1).repeat_interleave(count, 0)
        choice = torch.multinomial(posterior, 1, generator=generator).squeeze(1)
        given = x.repeat_interleave(count, 0)
        out = torch.empty_like(given)
        for member in range(self.members):
            rows = (choice == member).nonzero().squeeze(1)
            if len(rows):
                out[rows] = self.sample_member(
                    len(rows), member, generator, given=(given[rows], ~hidden)
                )
        return out.reshape(len(x), count, *self.shape).to(torch.uint8).cpu().numpy()

    @torch.inference_mode()
    def log_prob(self, x) -> torch.Tensor:
        """Exact log p(x) in nats per image: the log-mean-exp over members of their likelihoods
        (never the likelihood of averaged outputs)."""
        x = as_long_tensor(x, self.device)
        # Members outermost: a member's masks or ordering are set up once for all the images.
        per_member = torch.stack(
            [
                torch.cat(
                    [
                        self.member_log_prob(x[start : start + self.eval_batch], k)
                        for start in range(0, len(x), self.eval_batch)
                    ]
                )
                for k in range(self.members)
            ]
        )
        return log_mean_exp(per_member, 0)

    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Exact samples of the ensemble: a member per image, then that member's sampler."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        choice = torch.randint(self.members, (n,), generator=generator, device=self.device)
        out = torch.empty(n, self.dims, dtype=torch.long, device=self.device)
        for member in range(self.members):
            rows = (choice == member).nonzero().squeeze(1)
            for start in range(0, len(rows), self.sample_batch):
                chunk = rows[start : start + self.sample_batch]
                out[chunk] = self.sample_member(len(chunk), member, generator)
        return out.reshape(n, *self.shape).to(torch.uint8).cpu().numpy()

    def to_checkpoint(self) -> dict:
        return checkpoint(self, self.state_dict())

    @classmethod
    def from_checkpoint(cls, checkpoint: dict):
        model = cls(checkpoint["shape"], checkpoint["levels"], checkpoint["config"])
        model.load_state_dict(checkpoint["state"])
        return model
