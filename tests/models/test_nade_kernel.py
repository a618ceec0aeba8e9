"""The fused CPU kernel against the reference tensor formulation."""

import subprocess
import sys

import pytest
import torch

from arbench.models import nade_kernel
from arbench.models.nade import NADE

pytestmark = pytest.mark.skipif(
    nade_kernel.library() is None, reason="no C compiler to build the kernel"
)


@pytest.mark.parametrize(
    "config",
    [
        {"activation": "sigmoid"},
        {"activation": "relu", "ordering": "random"},
        {"order_agnostic": True},
    ],
)
def test_fused_loss_and_gradients_match_the_reference(config):
    model = NADE((1, 4, 5), 2, {"hidden": 13, **config})
    with torch.no_grad():
        model.b.normal_()
        model.c.normal_()
    x = (torch.rand(19, 20) < 0.4).long()  # 19: groups of 8 plus a ragged tail
    order = model.training_order()

    model.config["kernel"] = "reference"
    reference = -model.reference_log_prob(x, order)
    reference.mean().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    model.config["kernel"] = "fused"
    assert nade_kernel.applies(model, x)
    fused = nade_kernel.nll(model, x, order)
    fused.mean().backward()
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-4)
    for grad, parameter in zip(expected, model.parameters(), strict=True):
        torch.testing.assert_close(parameter.grad, grad, rtol=1e-4, atol=1e-6)


def test_fused_inference_matches_reference_log_prob():
    model = NADE((1, 4, 5), 2, {"hidden": 13, "order_agnostic": True, "test_orderings": 3})
    x = (torch.rand(30, 20) < 0.4).long()
    fused = model.log_prob(x)
    model.config["kernel"] = "reference"
    torch.testing.assert_close(fused, model.log_prob(x), rtol=1e-5, atol=1e-4)


def test_unequal_loss_weights_are_refused():
    model = NADE((1, 2, 2), 2, {"hidden": 3, "kernel": "fused"})
    nll = model.nll((torch.rand(4, 4) < 0.5).long())
    with pytest.raises(RuntimeError, match="weight images equally"):
        (nll * torch.arange(4.0)).sum().backward()


@pytest.mark.parametrize("scale", [10, 100])
def test_saturated_activations_stay_finite_and_match(scale):
    """Large pre-activations overflow exp: the kernel must still give the reference's numbers."""
    model = NADE((1, 4, 5), 2, {"hidden": 16, "kernel": "fused"})
    with torch.no_grad():
        model.W.mul_(30 * scale)
        model.c.normal_(0, scale)
        model.V.mul_(scale)
        model.b.normal_(0, scale)
    x = (torch.rand(20, 20) < 0.4).long()
    fused = model.nll(x)
    fused.mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.config["kernel"] = "reference"
    reference = -model.reference_log_prob(x, model.order)
    reference.mean().backward()
    assert torch.isfinite(fused).all() and all(torch.isfinite(g).all() for g in grads)
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-3)
    for grad, parameter in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(
            grad, parameter.grad, rtol=1e-3, atol=1e-3 * float(parameter.grad.abs().max())
        )


@pytest.mark.parametrize("threads", [1, 3, 40])
def test_thread_count_and_reused_workspace_do_not_change_the_gradients(threads):
    """Each thread sums its share into its own gradient copy; the copies must add up the same
    however the batch is split, also with more threads than images and a workspace left over
    from a larger call."""
    model = NADE((1, 4, 5), 2, {"hidden": 13, "kernel": "fused"})
    big, small = (torch.rand(50, 20) < 0.4).long(), (torch.rand(7, 20) < 0.4).long()
    model.nll(big).mean().backward()  # leaves a larger workspace behind
    model.zero_grad()
    model.nll(small).mean().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        model.nll(small).mean().backward()
    finally:
        torch.set_num_threads(before)
    for grad, parameter in zip(expected, model.parameters(), strict=True):
        torch.testing.assert_close(parameter.grad, grad, rtol=1e-5, atol=1e-6)


def test_loading_the_kernel_leaves_denormal_handling_alone():
    # -ffast-math at link time would make the loading thread flush denormals to zero.
    code = (
        "import torch; from arbench.models import nade_kernel; "
        "x = torch.tensor([1e-39]); nade_kernel.library(); print(bool(x * 1.0 != 0))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr
