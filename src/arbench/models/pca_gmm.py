"""The original study's mixture baseline: a Gaussian mixture on whitened principal components.

The dequantized training pixels y = (x + u) / L are projected onto the principal components that
keep `variance` of their variance (whitened: divided by their standard deviations), and a
`GaussianMixture` (full covariance by default, about a hundred components in the original work)
is fitted there. So that the model is a density over all pixels, the discarded directions get an
isotropic Gaussian whose variance is their mean eigenvalue, as probabilistic PCA does (Tipping &
Bishop 1999):

    log p(y) = log p_gmm(z) - sum(log scale) + log N(r; 0, sigma^2 I)

with a = B (y - mean) the kept coordinates, z = a / scale and r the residual outside them. Its NLL
is the uniform-dequantization upper bound, with noise independent of the fit's, as for `gmm`;
samples are mapped back to pixel levels through the same bins. The residual variance is never
below the dequantization noise's own, 1 / (12 L^2): fitted to one draw of that noise, the kept
components absorb part of it and the discarded eigenvalues come out too small.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from arbench.core.plan import architecture_settings
from arbench.models.base import checkpoint
from arbench.models.conditional import PixelGaussianMixture
from arbench.models.gmm import FIT_STREAM, GMM, mixture_state, restore_mixture

log = logging.getLogger(__name__)


class PCAGMM(GMM):
    """A GMM in the whitened principal subspace, an isotropic Gaussian outside it."""

    name = "pca_gmm"

    def __init__(self, shape, levels: int, config: dict | None = None):
        config = architecture_settings(self.name, config)
        if not 0 < config["variance"] <= 1:
            raise ValueError(
                f"pca_gmm variance must be a fraction in (0, 1] of the variance to keep, got "
                f"{config['variance']}"
            )
        super().__init__(shape, levels, config)
        self.mean = self.basis = self.scale = None
        self.residual_variance = 1.0

    @property
    def exact(self) -> bool:
        return False

    def project(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whitened coordinates z, squared norm of the residual) of pixel vectors y."""
        centred = y - self.mean
        kept = centred @ self.basis.T
        residual = np.maximum((centred**2).sum(1) - (kept**2).sum(1), 0.0)
        return kept / self.scale, residual

    def density(self, y: np.ndarray) -> np.ndarray:
        """log p(y) of dequantized pixel vectors."""
        z, residual = self.project(y)
        outside = self.dims - len(self.scale)
        log_residual = -0.5 * outside * math.log(2 * math.pi * self.residual_variance) - (
            residual / (2 * self.residual_variance)
        )
        return self.mixture.score_samples(z) - np.log(self.scale).sum() + log_residual

    def fit(self, train, valid=None) -> dict:
        x = self.fitted_images(train)
        y = self.dequantize(x, self.noise(FIT_STREAM))
        self.mean = y.mean(0)
        _, singular, rows = np.linalg.svd(y - self.mean, full_matrices=False)
        eigenvalues = singular**2 / (len(y) - 1)
        total = eigenvalues.sum()
        kept = int(np.searchsorted(np.cumsum(eigenvalues) / total, self.config["variance"]) + 1)
        kept = min(kept, len(eigenvalues), self.dims)
        self.basis = rows[:kept]
        self.scale = np.sqrt(eigenvalues[:kept]) if self.config["whiten"] else np.ones(kept)
        outside = self.dims - kept
        # The mean eigenvalue of the discarded directions, but never below the variance the
        # uniform dequantization noise alone puts in every direction: fitted on one draw of that
        # noise, the kept components absorb some of it and the tail's eigenvalues come out low.
        floor = 1 / (12 * self.levels**2)
        residual = float(total - eigenvalues[:kept].sum()) / max(outside, 1)
        self.residual_variance = max(residual, floor)
        log.info("PCA-GMM on %d principal components", kept)
        tried = self.fit_grid(self.project(y)[0], valid)
        return {
            "chosen": self.chosen,
            "grid": tried,
            "principal_components": kept,
            "variance_kept": float(eigenvalues[:kept].sum() / total),
            "residual_variance": self.residual_variance,
            "training": self.training_record(),
        }

    def pixel_mixture(self) -> PixelGaussianMixture:
        """The same model as a Gaussian mixture over all pixels: each component's covariance
        mapped back through the whitened basis, plus the residual variance outside it."""
        inner = super().pixel_mixture()  # in the whitened coordinates
        lift = self.basis.T * self.scale  # (D, q)
        outside = self.residual_variance * (np.eye(self.dims) - self.basis.T @ self.basis)
        covariances = np.stack([lift @ c @ lift.T + outside for c in inner.covariances])
        means = self.mean + inner.means @ lift.T
        return PixelGaussianMixture(self.mixture.weights_, means, covariances)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        self.mixture.random_state = seed
        z, _ = self.mixture.sample(n)
        rng = np.random.default_rng(seed)
        z = z[rng.permutation(n)]  # sklearn returns samples grouped by component
        noise = rng.standard_normal((n, self.dims))
        residual = noise - (noise @ self.basis.T) @ self.basis
        y = self.mean + (z * self.scale) @ self.basis + math.sqrt(self.residual_variance) * residual
        levels = np.clip(np.floor(y * self.levels), 0, self.levels - 1)
        return levels.astype(np.uint8).reshape(n, *self.shape)

    def to_checkpoint(self) -> dict:
        state = {
            **{f"mixture.{k}": v for k, v in mixture_state(self.mixture).items()},
            "mean": torch.from_numpy(self.mean),
            "basis": torch.from_numpy(self.basis),
            "scale": torch.from_numpy(self.scale),
            "residual_variance": torch.tensor(self.residual_variance, dtype=torch.float64),
        }
        return {**checkpoint(self, state), "chosen": self.chosen}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict):
        model = cls(checkpoint["shape"], checkpoint["levels"], checkpoint["config"])
        state = checkpoint["state"]
        model.chosen = checkpoint.get("chosen") or model.grid()[0]
        model.mixture = restore_mixture(model.make(model.chosen), state, prefix="mixture.")
        model.mean, model.basis = state["mean"].numpy(), state["basis"].numpy()
        model.scale = state["scale"].numpy()
        model.residual_variance = float(state["residual_variance"])
        return model
