"""MADE: masked autoencoder for distribution estimation.

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution
Estimation", ICML. Reproduction (binarized MNIST): 1 hidden layer of 500, 32 masks: 88.04 nats;
2 hidden layers of 8,000, 32 masks: 86.64 nats test NLL (Adagrad lr 0.01, batch 100, direct
connections, masks resampled every minibatch, early stopping after 30 epochs).

Masks come from integer degrees: input at ordering position p has degree p (1..D); a hidden unit
with degree m sees inputs of degree <= m; an output of degree p sees hidden units of degree < p.
With several masks (connectivity-agnostic training) each minibatch uses the next mask, and the
likelihood is the log-mean-exp over masks of each mask's exact likelihood.

Masked weights are recomputed only when the mask changes or the weights were updated
(`torch.Tensor._version`), never twice for the same weights.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F

from arbench.models.base import NeuralDensityModel, as_long_tensor, log_mean_exp, make_order
from arbench.models.distributions import make_output

EVAL_BATCH = 1024


def made_degrees(
    dims: int, hidden: list[int], order: torch.Tensor, generator
) -> list[torch.Tensor]:
    """Degrees of the inputs (position in `order`, 1..D) and of each hidden layer."""
    inputs = torch.empty(dims, dtype=torch.long)
    inputs[order] = torch.arange(1, dims + 1)
    degrees = [inputs]
    for width in hidden:
        low = int(degrees[-1].min()) if dims > 1 else 1
        degrees.append(torch.randint(low, max(dims, low + 1), (width,), generator=generator))
    return degrees


def made_masks(degrees: list[torch.Tensor], params_per_dim: int) -> list[torch.Tensor]:
    """Masks (out, in) of every hidden layer and of the output layer; then the direct mask."""
    masks = [(later[:, None] >= earlier[None, :]).float() for earlier, later in pairwise(degrees)]
    output_degrees = degrees[0].repeat_interleave(params_per_dim)
    masks.append((output_degrees[:, None] > degrees[-1][None, :]).float())
    masks.append((output_degrees[:, None] > degrees[0][None, :]).float())
    return masks


class MADE(NeuralDensityModel):
    name = "made"
    defaults = {
        "hidden": [500],
        "masks": 1,
        "ordering": "natural",
        "order_agnostic": False,
        "direct": True,
        "output": "auto",
        "components": 5,
        "seed": 0,
    }

    def __init__(self, shape, levels: int, config: dict | None = None):
        config = {**self.defaults, **(config or {})}
        super().__init__(shape, levels, config)
        self.output = make_output(levels, config["output"], config["components"])
        k = self.output.params_per_dim
        widths = [self.dims, *config["hidden"], self.dims * k]
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(fan_in, fan_out) for fan_in, fan_out in pairwise(widths)
        )
        self.direct = (
            torch.nn.Linear(self.dims, self.dims * k, bias=False) if config["direct"] else None
        )
        generator = torch.Generator().manual_seed(config["seed"])
        with (
            torch.no_grad()
        ):  # from the model's own seed, not the global RNG: same config, same model
            for linear in [*self.layers, *([self.direct] if self.direct is not None else [])]:
                bound = 1.0 / np.sqrt(linear.in_features)
                linear.weight.uniform_(-bound, bound, generator=generator)
                if linear.bias is not None:
                    linear.bias.uniform_(-bound, bound, generator=generator)
        base_order = make_order(self.shape, config["ordering"], config["seed"])
        masks, orders = [], []
        for index in range(config["masks"]):
            order = base_order
            if config["order_agnostic"] and index > 0:
                order = torch.randperm(self.dims, generator=generator)
            degrees = made_degrees(self.dims, config["hidden"], order, generator)
            masks.append(made_masks(degrees, k))
            orders.append(order)
        # Stacked per layer: masks_l has shape (n_masks, out, in).
        for layer_index in range(len(widths)):
            self.register_buffer(
                f"masks_{layer_index}", torch.stack([m[layer_index] for m in masks])
            )
        self.register_buffer("orders", torch.stack(orders))
        self.mask_index = 0
        self._masked_cache: dict = {}

    def get_extra_state(self) -> dict:
        """The mask cycle position travels with the weights: a resumed run uses the same masks."""
        return {"mask_index": self.mask_index}

    def set_extra_state(self, state: dict) -> None:
        self.mask_index = int(state["mask_index"])

    def mask(self, layer_index: int, mask_index: int) -> torch.Tensor:
        return getattr(self, f"masks_{layer_index}")[mask_index]

    def masked_weights(self, mask_index: int) -> list[torch.Tensor]:
        """Weights times masks, cached for as long as neither the mask nor the weights change."""
        weights = [layer.weight for layer in self.layers]
        if self.direct is not None:
            weights.append(self.direct.weight)
        key = (
            mask_index,
            torch.is_grad_enabled(),
            tuple(w._version for w in weights),
            tuple(w.data_ptr() for w in weights),
        )
        if self._masked_cache.get("key") != key:
            masked = [w * self.mask(i, mask_index) for i, w in enumerate(weights)]
            self._masked_cache = {"key": key, "masked": masked}
        return self._masked_cache["masked"]

    def forward_params(self, x: torch.Tensor, mask_index: int) -> torch.Tensor:
        """Output parameters (B, D, K) for long input (B, D) under one mask."""
        values = self.inputs(x)
        weights = self.masked_weights(mask_index)
        hidden = values
        for layer, weight in zip(self.layers[:-1], weights, strict=False):
            hidden = F.relu(F.linear(hidden, weight, layer.bias))
        out = F.linear(hidden, weights[len(self.layers) - 1], self.layers[-1].bias)
        if self.direct is not None:
            out = out + F.linear(values, weights[-1])
        return out.view(len(x), self.dims, self.output.params_per_dim)

    def log_prob_mask(self, x: torch.Tensor, mask_index: int) -> torch.Tensor:
        return self.output.log_prob(self.forward_params(x, mask_index), x).sum(1)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """Loss under the next mask in the cycle (connectivity-agnostic training)."""
        mask_index = self.mask_index
        self.mask_index = (self.mask_index + 1) % self.config["masks"]
        return -self.log_prob_mask(x, mask_index)

    @torch.inference_mode()
    def log_prob(self, x) -> torch.Tensor:
        x = as_long_tensor(x, self.device)
        parts = []
        for start in range(0, len(x), EVAL_BATCH):
            batch = x[start : start + EVAL_BATCH]
            per_mask = torch.stack([self.log_prob_mask(batch, m) for m in range(len(self.orders))])
            parts.append(log_mean_exp(per_mask, 0))
        return torch.cat(parts)

    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Exact samples of the ensemble: a mask per image, then pixels in that mask's order."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        n_masks = len(self.orders)
        choice = torch.randint(n_masks, (n,), generator=generator, device=self.device)
        out = torch.empty(n, self.dims, dtype=torch.long, device=self.device)
        for m in range(n_masks):
            rows = (choice == m).nonzero().squeeze(1)
            for start in range(0, len(rows), EVAL_BATCH):
                chunk = rows[start : start + EVAL_BATCH]
                out[chunk] = self._sample_mask(len(chunk), m, generator)
        return out.reshape(n, *self.shape).to(torch.uint8).cpu().numpy()

    def _sample_mask(self, n: int, mask_index: int, generator) -> torch.Tensor:
        """Draw in order; the first layer's pre-activation is updated incrementally, and only
        the output rows of the dimension being drawn are computed."""
        weights = self.masked_weights(mask_index)
        k = self.output.params_per_dim
        first, last = self.layers[0], self.layers[-1]
        pre_activation = first.bias.expand(n, -1).clone()
        out = torch.zeros(n, self.dims, dtype=torch.long, device=self.device)
        values = torch.zeros(n, self.dims, device=self.device)
        scale = 1.0 / (self.levels - 1)
        for d in self.orders[mask_index].tolist():
            hidden = F.relu(pre_activation)
            for layer, weight in zip(self.layers[1:-1], weights[1:], strict=False):
                hidden = F.relu(F.linear(hidden, weight, layer.bias))
            rows = slice(d * k, (d + 1) * k)
            params = F.linear(hidden, weights[len(self.layers) - 1][rows], last.bias[rows])
            if self.direct is not None:
                params = params + values @ weights[-1][rows].t()
            value = self.output.sample(params, generator)
            out[:, d] = value
            values[:, d] = value.float() * scale
            pre_activation.addmm_(values[:, d : d + 1], weights[0][:, d].unsqueeze(0))
        return out
