"""Gaussian mixture baselines on dequantized pixels, as discrete models of the pixel levels.

scikit-learn's `GaussianMixture` is fitted to y = (x + u) / L, u ~ U[0, 1)^D (uniform
dequantization of the levels x in 0..L-1). The discrete model is the mass each pixel bin
[x/L, (x+1)/L) gets, the first and last bins reaching out to -inf and +inf, so that the
probabilities of all images sum to one; sampling maps draws to the same bins. Its likelihood:

- **exact** for `diag` and `spherical` covariances: within a component the pixels are
  independent, so a bin's mass is a difference of two normal CDFs (taken in log space, stable in
  the tails) and an image's is their product; the components combine by log-sum-exp;
- an **upper bound** on the NLL for `full` and `tied`: log P(x) >= E_u log p((x+u)/L) - D log L
  (Jensen), estimated with `dequant_samples` draws of u that are independent of the draws the
  model was fitted to (reusing them reports the fit's own noise as likelihood), and with the
  estimate's Monte Carlo standard error.

With `components` and `reg_covar` given as lists, every combination is fitted and the one with
the best valid NLL kept (exact where it can be, else the bound); the choice and the grid's NLLs
are recorded. `gmm` is full covariance by default, the strongest mixture; `gmm_diag` keeps the
diagonal one beside it with its exact likelihood.
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import torch
from scipy.special import log_ndtr, logsumexp
from sklearn.mixture import GaussianMixture

from arbench.core.plan import architecture_settings
from arbench.models.base import check_components, checkpoint
from arbench.models.conditional import (
    PixelGaussianMixture,
    choose_components,
    discrete_conditional,
)
from arbench.training.convergence import em_record

log = logging.getLogger(__name__)

GMM_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_")
EXACT_COVARIANCES = ("diag", "spherical")
# Streams of the dequantization noise: fitting and evaluating never share draws.
FIT_STREAM, EVALUATE_STREAM, SUBSET_STREAM = 0, 1, 2


def log_normal_mass(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """log(Phi(upper) - Phi(lower)) for lower < upper (either may be infinite), accurate in
    both tails: right of zero, the mirrored form Phi(-lower) - Phi(-upper) is used."""
    mirrored = (lower + upper) > 0
    low = np.where(mirrored, -upper, lower)
    high = np.where(mirrored, -lower, upper)
    log_high = log_ndtr(high)
    with np.errstate(divide="ignore"):
        ratio = np.minimum(log_ndtr(low) - log_high, -1e-300)
    return log_high + np.where(
        ratio > -math.log(2), np.log(-np.expm1(ratio)), np.log1p(-np.exp(ratio))
    )


class GMM:
    """Gaussian mixture on dequantized pixels; see the module docstring for its likelihood."""

    name = "gmm"
    version = 1  # of what a saved state means (arbench.models.base.checkpoint)

    def __init__(self, shape, levels: int, config: dict | None = None):
        self.shape = tuple(int(s) for s in shape)
        self.levels = int(levels)
        self.dims = int(np.prod(self.shape))
        self.config = architecture_settings(self.name, config)
        self.chosen = {}
        self.mixture = self.make(self.grid()[0])

    @property
    def exact(self) -> bool:
        return self.config["covariance"] in EXACT_COVARIANCES

    def grid(self) -> list[dict]:
        """Every (components, reg_covar) combination the settings ask to try."""

        def listed(value):
            return value if isinstance(value, list) else [value]

        return [
            {"components": k, "reg_covar": r}
            for k, r in itertools.product(
                listed(self.config["components"]), listed(self.config["reg_covar"])
            )
        ]

    def make(self, choice: dict) -> GaussianMixture:
        return GaussianMixture(
            n_components=choice["components"],
            covariance_type=self.config["covariance"],
            max_iter=self.config["max_iter"],
            reg_covar=choice["reg_covar"],
            random_state=self.config["seed"],
        )

    def noise(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config["seed"], stream])

    def dequantize(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (x.astype(np.float64) + rng.random(x.shape)) / self.levels

    def fitted_images(self, train) -> np.ndarray:
        """The training images (N, D) EM is fitted to: all of them, or `fit_images` drawn at
        random (EM with full covariances costs images x components x pixels^2 an iteration)."""
        x = np.asarray(train).reshape(len(train), -1)
        limit = self.config["fit_images"]
        if limit is not None and len(x) > limit:
            rng = np.random.default_rng([self.config["seed"], SUBSET_STREAM])
            x = x[np.sort(rng.choice(len(x), limit, replace=False))]
        check_components(self.name, self.config["components"], len(x))
        return x

    def fit(self, train, valid=None) -> dict:
        x = self.fitted_images(train)
        tried = self.fit_grid(self.dequantize(x, self.noise(FIT_STREAM)), valid)
        return {
            "chosen": self.chosen,
            "grid": tried,
            "iterations": int(self.mixture.n_iter_),
            "training": self.training_record(),
        }

    def training_record(self) -> dict:
        """How the chosen fit's EM ended, with its last iteration's gain (nats/image)."""
        return em_record(bool(self.mixture.converged_), list(self.mixture.lower_bounds_))

    def fit_grid(self, points: np.ndarray, valid) -> list[dict]:
        """Fit a mixture to `points` for every choice of the grid and keep the one with the
        lowest valid NLL (the first, without a valid split); what each choice scored."""
        tried, best = [], None
        for choice in self.grid():
            self.mixture = self.make(choice).fit(points)
            nll = float(-self.log_prob(valid).mean()) if valid is not None else math.nan
            tried.append(
                {
                    **choice,
                    "valid_nll": nll,
                    "converged": bool(self.mixture.converged_),
                    "iterations": int(self.mixture.n_iter_),
                }
            )
            log.info("%s %s: valid NLL %.3f", self.name, choice, nll)
            if best is None or nll < best[0]:
                best = (nll, choice, self.mixture)
        _, self.chosen, self.mixture = best
        return tried

    def bin_log_mass(self) -> np.ndarray:
        """(K, D, L): log mass of every level of every pixel under every component (diagonal
        and spherical covariances)."""
        means = self.mixture.means_[:, :, None]
        variances = self.mixture.covariances_
        if self.config["covariance"] == "spherical":
            variances = np.repeat(variances[:, None], self.dims, axis=1)
        scale = np.sqrt(variances)[:, :, None]
        edges = np.arange(self.levels + 1, dtype=np.float64) / self.levels
        edges[0], edges[-1] = -np.inf, np.inf
        lower = (edges[:-1][None, None, :] - means) / scale
        upper = (edges[1:][None, None, :] - means) / scale
        return log_normal_mass(lower, upper)

    def exact_log_prob(self, x: np.ndarray, chunk: int = 256) -> np.ndarray:
        table = self.bin_log_mass()  # (K, D, L)
        weights = np.log(self.mixture.weights_)
        dims = np.arange(self.dims)
        out = []
        for start in range(0, len(x), chunk):
            block = x[start : start + chunk]  # (B, D)
            per_component = table[:, dims[None, :], block].sum(2)  # (K, B)
            out.append(logsumexp(per_component + weights[:, None], axis=0))
        return np.concatenate(out)

    def density(self, y: np.ndarray) -> np.ndarray:
        """log p(y) of dequantized pixel vectors."""
        return self.mixture.score_samples(y)

    def bound_log_prob(self, x: np.ndarray, samples: int | None = None) -> tuple:
        """(E_u log p((x+u)/L) - D log L per image, its Monte Carlo standard error)."""
        rng = self.noise(EVALUATE_STREAM)
        samples = samples or self.config["dequant_samples"]
        draws = np.stack([self.density(self.dequantize(x, rng)) for _ in range(samples)])
        mean = draws.mean(0) - self.dims * math.log(self.levels)
        se = draws.std(0, ddof=1) / math.sqrt(samples) if samples > 1 else np.full(len(x), np.nan)
        return mean, se

    def log_prob(self, x) -> torch.Tensor:
        """log P(x) in nats: exact for diagonal and spherical covariances, else the bound."""
        x = np.asarray(x).reshape(len(x), -1)
        values = self.exact_log_prob(x) if self.exact else self.bound_log_prob(x)[0]
        return torch.from_numpy(values)

    def pixel_mixture(self) -> PixelGaussianMixture:
        """The fitted mixture with every component's covariance as a full (D, D) matrix."""
        kind, covariances = self.config["covariance"], self.mixture.covariances_
        count, dims = self.mixture.means_.shape  # dims: of the space the mixture was fitted in
        if kind == "tied":
            covariances = np.broadcast_to(covariances, (count, dims, dims))
        elif kind == "diag":
            covariances = np.stack([np.diag(c) for c in covariances])
        elif kind == "spherical":
            covariances = np.stack([np.eye(dims) * c for c in covariances])
        return PixelGaussianMixture(self.mixture.weights_, self.mixture.means_, covariances)

    def pixel_log_probs(self, x: np.ndarray) -> np.ndarray:
        """(K, B, D): log mass of each pixel's bin under each component (diagonal kinds)."""
        return self.bin_log_mass()[:, np.arange(self.dims)[None, :], x]

    def conditional_log_prob(self, x, hidden) -> tuple[np.ndarray, bool]:
        """(log P(x_hidden | x_observed) per image, exact): exact for diagonal and spherical
        covariances; otherwise the dequantized estimate E_u log p(y_h | y_o) - (hidden) log L,
        which is not a bound."""
        x, hidden = np.asarray(x).reshape(len(x), -1), np.asarray(hidden)
        if self.exact:
            parts = [
                discrete_conditional(
                    np.log(self.mixture.weights_), self.pixel_log_probs(x[i : i + 256]), hidden
                )[0]
                for i in range(0, len(x), 256)
            ]
            return np.concatenate(parts), True
        rng, mixture = self.noise(EVALUATE_STREAM), self.pixel_mixture()
        draws = [
            mixture.conditional_log_density(self.dequantize(x, rng), hidden)
            for _ in range(self.config["dequant_samples"])
        ]
        return np.mean(draws, axis=0) - hidden.sum() * math.log(self.levels), False

    def complete(self, x, hidden, count: int, seed: int = 0) -> np.ndarray:
        """(B, count, C, H, W): the hidden pixels drawn given the observed ones, through the
        same bins as `sample`."""
        x, hidden = np.asarray(x).reshape(len(x), -1), np.asarray(hidden)
        rng = np.random.default_rng(seed)
        if self.exact:
            _, posterior = discrete_conditional(
                np.log(self.mixture.weights_), self.pixel_log_probs(x), hidden
            )
            components = choose_components(posterior, count, rng)
            means = self.mixture.means_[components][:, :, hidden]
            variances = self.pixel_mixture().covariances.diagonal(axis1=1, axis2=2)
            scale = np.sqrt(variances[components][:, :, hidden])
            y = means + scale * rng.standard_normal(means.shape)
        else:
            y = self.pixel_mixture().sample_hidden(self.dequantize(x, rng), hidden, count, rng)
        out = np.repeat(x[:, None, :], count, axis=1)
        out[:, :, hidden] = np.clip(np.floor(y * self.levels), 0, self.levels - 1)
        return out.astype(np.uint8).reshape(len(x), count, *self.shape)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        self.mixture.random_state = seed
        y, _ = self.mixture.sample(n)
        rng = np.random.default_rng(seed)
        y = y[rng.permutation(n)]  # sklearn returns samples grouped by component
        levels = np.clip(np.floor(y * self.levels), 0, self.levels - 1)
        return levels.astype(np.uint8).reshape(n, *self.shape)

    def to_checkpoint(self) -> dict:
        return {**checkpoint(self, mixture_state(self.mixture)), "chosen": self.chosen}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict):
        model = cls(checkpoint["shape"], checkpoint["levels"], checkpoint["config"])
        model.chosen = checkpoint.get("chosen") or model.grid()[0]
        model.mixture = restore_mixture(model.make(model.chosen), checkpoint["state"])
        return model


def mixture_state(mixture: GaussianMixture) -> dict:
    """A fitted mixture's parameters as tensors (what a checkpoint holds)."""
    return {name: torch.from_numpy(np.asarray(getattr(mixture, name))) for name in GMM_ATTRIBUTES}


def restore_mixture(mixture: GaussianMixture, state: dict, prefix: str = "") -> GaussianMixture:
    for name in GMM_ATTRIBUTES:
        setattr(mixture, name, state[prefix + name].numpy())
    return mixture


class DiagonalGMM(GMM):
    """The same mixture with diagonal covariances: the weakest, with an exact likelihood."""

    name = "gmm_diag"
