"""MADE: masked autoencoder for distribution estimation.

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution
Estimation", ICML. Reproduction (binarized MNIST): 1 hidden layer of 500, 32 masks: 88.04 nats;
2 hidden layers of 8,000, 32 masks: 86.64 nats test NLL (Adagrad lr 0.01, batch 100, direct
connections, masks resampled every minibatch, early stopping after 30 epochs).

Masks come from integer degrees: the input at ordering position p has degree p (1..D); a hidden
unit with degree m sees inputs of degree <= m; an output of degree p sees hidden units of degree
< p. With several masks (connectivity-agnostic training) each minibatch uses the next mask, and
the likelihood is the log-mean-exp over masks of each mask's exact likelihood.

The network works in the position space of its base ordering (input and output p belong to pixel
`order[p]`). With one mask the hidden units are labelled in order of degree, which makes every
mask a staircase: each block of output rows needs only a prefix of the input columns, so the
matmuls skip the zero upper part, close to half of the work.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F

from arbench.core.plan import architecture_settings
from arbench.models.base import NeuralDensityModel, make_order
from arbench.models.distributions import make_output

EVAL_BATCH = 1024


def made_degrees(
    input_degrees: torch.Tensor, hidden: list[int], generator, sort: bool
) -> list[torch.Tensor]:
    """Degrees of the inputs and of each hidden layer (sorted ascending when `sort`)."""
    dims = len(input_degrees)
    degrees = [input_degrees]
    for width in hidden:
        low = int(degrees[-1].min())
        drawn = torch.randint(low, max(dims, low + 1), (width,), generator=generator)
        degrees.append(torch.sort(drawn).values if sort else drawn)
    return degrees


def made_masks(degrees: list[torch.Tensor], params_per_dim: int) -> list[torch.Tensor]:
    """Masks (out, in) of every hidden layer, of the output layer, then of the direct layer."""
    masks = [(later[:, None] >= earlier[None, :]).float() for earlier, later in pairwise(degrees)]
    output_degrees = degrees[0].repeat_interleave(params_per_dim)
    masks.append((output_degrees[:, None] > degrees[-1][None, :]).float())
    masks.append((output_degrees[:, None] > degrees[0][None, :]).float())
    return masks


def staircase_blocks(mask: torch.Tensor, n_blocks: int) -> list[tuple[int, int, int]]:
    """Split the rows into `n_blocks`; each block (r0, r1, c) has no connection beyond column c."""
    rows = mask.shape[0]
    bounds = np.linspace(0, rows, min(n_blocks, rows) + 1).round().astype(int)
    blocks = []
    for r0, r1 in pairwise(bounds.tolist()):
        used = mask[r0:r1].any(0).nonzero()
        blocks.append((r0, r1, int(used.max()) + 1 if len(used) else 0))
    return blocks


class StaircaseLinear(torch.autograd.Function):
    """y = x (W * M)^T + b computed by row blocks, block (r0, r1, c) reading only x[:, :c].

    Written by hand because slicing a parameter under autograd would give every block a
    full-size zero gradient to add into; here each block writes its part of one gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, mask, blocks):
        used = [weight[r0:r1, :c] * mask[r0:r1, :c] for r0, r1, c in blocks]
        if bias is None:
            parts = [x[:, :c] @ w.t() for (_, _, c), w in zip(blocks, used, strict=True)]
        else:
            parts = [
                torch.addmm(bias[r0:r1], x[:, :c], w.t())
                for (r0, r1, c), w in zip(blocks, used, strict=True)
            ]
        out = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        ctx.save_for_backward(x, mask, *used)
        ctx.blocks, ctx.has_bias, ctx.weight_shape = blocks, bias is not None, weight.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, mask, *used = ctx.saved_tensors
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_w = grad_out.new_empty(ctx.weight_shape) if ctx.needs_input_grad[1] else None
        for (r0, r1, c), w in zip(ctx.blocks, used, strict=True):
            if grad_w is not None:
                grad_w[r0:r1, c:].zero_()  # beyond the staircase: written by no block
            if c == 0:
                continue
            g = grad_out[:, r0:r1]
            if grad_x is not None:
                grad_x[:, :c].addmm_(g, w)
            if grad_w is not None:
                block = grad_w[r0:r1, :c]
                torch.mm(g.t(), x[:, :c], out=block)
                block.mul_(mask[r0:r1, :c])
        grad_b = grad_out.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None


class MADE(NeuralDensityModel):
    name = "made"

    def __init__(self, shape, levels: int, config: dict | None = None):
        config = architecture_settings(self.name, config)
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
        with torch.no_grad():  # from the model's own seed, not the global RNG
            for linear in self.linears():
                bound = 1.0 / np.sqrt(linear.in_features)
                linear.weight.uniform_(-bound, bound, generator=generator)
                if linear.bias is not None:
                    linear.bias.uniform_(-bound, bound, generator=generator)

        self.register_buffer("order", make_order(self.shape, config["ordering"], config["seed"]))
        single = config["masks"] == 1
        degrees, position_orders = [], []
        for index in range(config["masks"]):
            positions = torch.arange(self.dims)
            if config["order_agnostic"] and index > 0:
                positions = torch.randperm(self.dims, generator=generator)
            input_degrees = torch.empty(self.dims, dtype=torch.long)
            input_degrees[positions] = torch.arange(1, self.dims + 1)
            degrees.append(made_degrees(input_degrees, config["hidden"], generator, sort=single))
            position_orders.append(positions)
        # Degrees, not masks, are stored: 32 masks of a 2x8000 MADE would take 10 GB.
        for layer_index in range(len(degrees[0])):  # degrees_l: (n_masks, width_l)
            stacked = torch.stack([d[layer_index] for d in degrees]).to(torch.int32)
            self.register_buffer(f"degrees_{layer_index}", stacked)
        self.register_buffer("position_orders", torch.stack(position_orders))
        # Pixel order of each mask: what sampling follows and what the tests perturb.
        self.register_buffer("orders", self.order[self.position_orders])
        self._mask_cache: tuple = (None, None)
        # Blocks follow mask 0's staircase; other masks may connect anywhere, so they get one
        # block spanning every column.
        self.blocks = [
            staircase_blocks(mask, config["blocks"]) if single else [(0, *mask.shape)]
            for mask in self.masks(0)
        ]
        self.mask_index = 0
        self.natural = torch.equal(self.order, torch.arange(self.dims))

    def linears(self) -> list[torch.nn.Linear]:
        return [*self.layers, *([self.direct] if self.direct is not None else [])]

    def masks(self, mask_index: int) -> list[torch.Tensor]:
        """Masks of every linear layer for one mask index, built from degrees, cached once."""
        key = (mask_index, self.degrees_0.device)
        if self._mask_cache[0] != key:
            # Normal tensors even when first asked for in evaluation, so training can use them.
            with torch.inference_mode(False), torch.no_grad():
                degrees = [
                    getattr(self, f"degrees_{i}")[mask_index] for i in range(len(self.layers))
                ]
                masks = made_masks(degrees, self.output.params_per_dim)
            self._mask_cache = (key, masks if self.direct is not None else masks[:-1])
        return self._mask_cache[1]

    def get_extra_state(self) -> dict:
        """The mask cycle position travels with the weights: a resumed run uses the same masks."""
        return {"mask_index": self.mask_index}

    def set_extra_state(self, state: dict) -> None:
        self.mask_index = int(state["mask_index"])

    def _params(self, values: torch.Tensor, mask_index: int) -> torch.Tensor:
        """Output parameters (B, D, K) in position space from inputs in position space."""
        masks = self.masks(mask_index)

        def linear(x, index, layer, bias):
            return StaircaseLinear.apply(x, layer.weight, bias, masks[index], self.blocks[index])

        hidden = values
        for index, layer in enumerate(self.layers[:-1]):
            hidden = F.relu(linear(hidden, index, layer, layer.bias))
        last = len(self.layers) - 1
        out = linear(hidden, last, self.layers[-1], self.layers[-1].bias)
        if self.direct is not None:
            out = out + linear(values, last + 1, self.direct, None)
        return out.view(len(values), self.dims, self.output.params_per_dim)

    def forward_params(self, x: torch.Tensor, mask_index: int) -> torch.Tensor:
        """Output parameters (B, D, K) for long pixel-space input (B, D), in pixel space."""
        params = self._params(self.inputs(x[:, self.order]), mask_index)
        return torch.empty_like(params).index_copy_(1, self.order, params)

    def log_prob_mask(self, x: torch.Tensor, mask_index: int) -> torch.Tensor:
        x = x if self.natural else x[:, self.order]
        return self.output.log_prob_sum(self._params(self.inputs(x), mask_index), x)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """Loss under the next mask in the cycle (connectivity-agnostic training)."""
        mask_index = self.mask_index
        self.mask_index = (self.mask_index + 1) % self.config["masks"]
        return -self.log_prob_mask(x, mask_index)

    eval_batch = EVAL_BATCH

    @property
    def members(self) -> int:
        return len(self.position_orders)

    def member_log_prob(self, x: torch.Tensor, member: int) -> torch.Tensor:
        return self.log_prob_mask(x, member)

    def member_order(self, member: int) -> torch.Tensor:
        return self.orders[member]

    def member_pixel_log_probs(self, x: torch.Tensor, member: int) -> torch.Tensor:
        positions = x if self.natural else x[:, self.order]
        per_position = self.output.log_prob(self._params(self.inputs(positions), member), positions)
        if self.natural:
            return per_position
        return torch.empty_like(per_position).index_copy_(1, self.order, per_position)

    def sample_member(self, n: int, member: int, generator, given=None) -> torch.Tensor:
        if given is not None:  # into position space, as the network sees pixels
            given = (given[0][:, self.order], given[1][self.order])
        positions = self._sample_mask(n, member, generator, given)
        return torch.empty_like(positions).index_copy_(1, self.order, positions)

    def _sample_mask(self, n: int, mask_index: int, generator, given=None) -> torch.Tensor:
        """Values in position space, drawn one position at a time. The first layer's
        pre-activation is updated incrementally, only the drawn position's outputs are computed,
        and each step touches only the units its mask connects (read off the masks)."""
        masks = self.masks(mask_index)
        masked = [linear.weight * mask for linear, mask in zip(self.linears(), masks, strict=True)]
        k = self.output.params_per_dim
        first, last = self.layers[0], self.layers[-1]
        output_index = len(self.layers) - 1
        shallow = output_index == 1  # one hidden layer: its pre-activation is all the state

        def extents(mask):  # per position p: columns 0..e-1 hold every connection of p's rows
            connected = mask.view(self.dims, k, -1).any(1)
            columns = torch.arange(1, connected.shape[1] + 1, device=mask.device)
            return (connected * columns).amax(1).tolist()

        hidden_used = extents(masks[output_index])
        direct_used = extents(masks[-1]) if self.direct is not None else None
        rows_fed = torch.arange(masks[0].shape[0], device=self.device)[:, None]
        # per input p: the first hidden unit it feeds (a suffix follows when degrees are sorted)
        first_fed = torch.where(masks[0] > 0, rows_fed, masks[0].shape[0]).amin(0).tolist()
        # Unit-major (units, n): the slices each step touches are contiguous rows.
        pre_activation = first.bias[:, None].expand(-1, n).clone()
        values = torch.zeros(self.dims, n, device=self.device)
        out = torch.zeros(self.dims, n, dtype=torch.long, device=self.device)
        scale = 1.0 / (self.levels - 1)
        known_values, known = given if given is not None else (None, None)
        known = known.tolist() if known is not None else [False] * self.dims

        def draw(p: int) -> torch.Tensor:
            rows = slice(p * k, (p + 1) * k)
            used = hidden_used[p]
            if shallow:
                hidden = F.relu(pre_activation[:used])
            else:
                hidden = F.relu(pre_activation).t()
                for layer, weight in zip(self.layers[1:-1], masked[1:], strict=False):
                    hidden = F.relu(F.linear(hidden, weight, layer.bias))
                hidden = hidden.t()[:used]
            params = torch.addmm(last.bias[rows, None], masked[output_index][rows, :used], hidden)
            if self.direct is not None:
                seen = direct_used[p]
                params.addmm_(masked[-1][rows, :seen], values[:seen])
            return self.output.sample(params.t(), generator)

        for p in self.position_orders[mask_index].tolist():
            value = known_values[:, p] if known[p] else draw(p)
            out[p] = value
            values[p] = value.float() * scale
            start = first_fed[p]
            pre_activation[start:].addr_(masked[0][start:, p], values[p])
        return out.t()
