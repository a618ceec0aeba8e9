import itertools

import numpy as np
import pytest
import torch

from arbench.models.nade import NADE
from arbench.models.pixelcnn import PixelCNN


def every_image(shape, levels):
    """Every image of `shape` on `levels` values, as uint8 (levels**D, C, H, W)."""
    dims = int(np.prod(shape))
    grid = np.array(list(itertools.product(range(levels), repeat=dims)), dtype=np.uint8)
    return grid.reshape(-1, *shape)


@pytest.fixture
def all_images():
    return every_image


def scramble(model, seed=1, scale=1.5):
    """Large random parameters, so the model's distribution is far from uniform."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    return model


@pytest.fixture
def scrambled():
    def make(cls, shape, levels, config):
        reference = {"kernel": "reference"} if cls is NADE else {}
        # PixelCNN stacks several layers: at NADE's scale its logits reach hundreds, and float32
        # rounding of the likelihoods alone would exceed the tolerances below
        scale = 0.5 if cls is PixelCNN else 1.5
        return scramble(cls(shape, levels, {**config, **reference}), scale=scale)

    return make


def member_orders(model):
    """The ordering of each ensemble member (NADE orderings, MADE masks, PixelCNN's raster)."""
    if isinstance(model, PixelCNN):
        return model.order[None]
    return model.test_orders if isinstance(model, NADE) else model.orders


def params_in_order(model, member, x):
    """Output parameters (B, D, K) of one member, arranged in that member's ordering."""
    order = member_orders(model)[member]
    if isinstance(model, NADE):
        return model.params_ordered(x, order)
    if isinstance(model, PixelCNN):  # (B, H, W, C, K): raster order, channels innermost
        params = model.params(x.reshape(len(x), *model.shape))
        return params.reshape(len(x), -1, params.shape[-1])
    return model.forward_params(x, member)[:, order]


@pytest.fixture(autouse=True)
def deterministic():
    torch.manual_seed(0)
