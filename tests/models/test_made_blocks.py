"""The staircase block matmul against a plain masked linear layer, forward and backward."""

import pytest
import torch
import torch.nn.functional as F

from arbench.models.made import MADE, StaircaseLinear


@pytest.mark.parametrize(
    "config",
    [
        {"hidden": [30], "blocks": 4},
        {"hidden": [12, 9], "blocks": 3, "ordering": "random"},
        {"hidden": [20], "masks": 3, "order_agnostic": True},  # several masks: one dense block
    ],
)
def test_blocked_layers_equal_masked_linear_in_value_and_gradient(config):
    model = MADE((1, 4, 5), 2, config)
    for mask_index in range(config.get("masks", 1)):
        for layer, mask, blocks in zip(
            model.linears(), model.masks(mask_index), model.blocks, strict=True
        ):
            x = torch.randn(7, layer.in_features, requires_grad=True)
            weight = layer.weight.detach().clone().requires_grad_()
            bias = None if layer.bias is None else layer.bias.detach().clone().requires_grad_()
            blocked = StaircaseLinear.apply(x, weight, bias, mask, blocks)
            direction = torch.randn_like(blocked)
            grads = torch.autograd.grad((blocked * direction).sum(), [x, weight])

            plain = F.linear(x, weight * mask, bias)
            expected = torch.autograd.grad((plain * direction).sum(), [x, weight])
            torch.testing.assert_close(blocked, plain)
            for got, want in zip(grads, expected, strict=True):
                torch.testing.assert_close(got, want)
    if config.get("masks", 1) == 1:
        assert len(model.blocks[0]) == config["blocks"]  # the structure is really used
        assert model.blocks[0][0][2] < model.linears()[0].in_features
