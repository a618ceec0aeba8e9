"""Exact likelihoods: probabilities over every configuration sum to one, ensembles are
log-mean-exps of their members, and outputs never look at the inputs they predict."""

import numpy as np
import pytest
import torch
from conftest import member_orders, params_in_order

from arbench.models.base import log_mean_exp
from arbench.models.made import MADE
from arbench.models.mob import MixtureOfBernoullis
from arbench.models.nade import NADE
from arbench.models.pixelcnn import PixelCNN

PIXELCNN = {"channels": 6, "head": 6, "layers": 3, "kernel": 3, "first_kernel": 3}
CASES = [
    # (model class, shape, levels, config)
    (NADE, (1, 2, 5), 2, {"hidden": 7}),
    (NADE, (1, 2, 5), 2, {"hidden": 7, "activation": "relu", "ordering": "random"}),
    (NADE, (1, 3, 4), 2, {"hidden": 5, "order_agnostic": True, "test_orderings": 3}),
    (NADE, (1, 1, 3), 3, {"hidden": 6, "output": "categorical"}),
    (NADE, (1, 1, 3), 4, {"hidden": 6, "output": "logistic_mixture", "components": 2}),
    (NADE, (3, 1, 1), 3, {"hidden": 6, "output": "logistic_mixture", "ordering": "random"}),
    (MADE, (1, 2, 5), 2, {"hidden": [9]}),
    (MADE, (1, 2, 5), 2, {"hidden": [9, 8], "direct": False, "ordering": "random"}),
    (MADE, (1, 3, 4), 2, {"hidden": [12], "masks": 4, "order_agnostic": True}),
    (MADE, (1, 1, 3), 3, {"hidden": [8], "output": "categorical", "masks": 2}),
    (MADE, (1, 1, 3), 5, {"hidden": [8, 8], "output": "logistic_mixture", "components": 3}),
    (
        MADE,
        (3, 1, 1),
        4,
        {"hidden": [8], "output": "logistic_mixture", "order_agnostic": True, "masks": 3},
    ),
    (PixelCNN, (1, 2, 5), 2, PIXELCNN),
    (PixelCNN, (1, 3, 3), 2, {**PIXELCNN, "first_kernel": 5}),
    (PixelCNN, (1, 2, 3), 3, {**PIXELCNN, "output": "categorical"}),
    # colour: sub-pixels R, G, B of one pixel in order, through the coupling coefficients
    (PixelCNN, (3, 1, 2), 3, {**PIXELCNN, "output": "categorical"}),
    (PixelCNN, (3, 2, 1), 4, {**PIXELCNN, "output": "logistic_mixture", "components": 2}),
    (PixelCNN, (2, 2, 2), 2, PIXELCNN),
]
IDS = [f"{c.__name__}-{s}-{lv}-{i}" for i, (c, s, lv, _) in enumerate(CASES)]


@pytest.mark.parametrize("cls, shape, levels, config", CASES, ids=IDS)
def test_probabilities_over_every_configuration_sum_to_one(
    cls, shape, levels, config, scrambled, all_images
):
    model = scrambled(cls, shape, levels, config)
    log_p = model.log_prob(all_images(shape, levels)).double()
    assert torch.logsumexp(log_p, 0).exp().item() == pytest.approx(1.0, abs=1e-4)
    assert log_p.max() - log_p.min() > 1.0  # far from uniform: the check has teeth


def test_mixture_of_bernoullis_sums_to_one(all_images):
    images = all_images((1, 2, 5), 2)
    model = MixtureOfBernoullis((1, 2, 5), 2, {"components": 3, "max_iter": 5})
    model.fit(images[np.random.default_rng(0).integers(0, len(images), 200)])
    assert torch.logsumexp(model.log_prob(images), 0).exp().item() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("cls, shape, levels, config", CASES, ids=IDS)
def test_output_never_depends_on_inputs_at_or_after_it(cls, shape, levels, config, scrambled):
    model = scrambled(cls, shape, levels, config)
    dims = int(np.prod(shape))
    x = torch.from_numpy(np.random.default_rng(0).integers(0, levels, (4, dims))).long()
    with torch.no_grad():
        for member, order in enumerate(member_orders(model)):
            base = params_in_order(model, member, x)
            for position in range(dims):
                changed = x.clone()
                later = order[position:]  # the input predicted here and all after it
                changed[:, later] = (changed[:, later] + 1) % levels
                out = params_in_order(model, member, changed)
                assert torch.equal(out[:, : position + 1], base[:, : position + 1]), (
                    f"member {member}: an output at or before position {position} saw a later input"
                )
            # and the outputs are not constant: the last one sees the earlier inputs
            first_changed = x.clone()
            first_changed[:, order[: dims - 1]] = (first_changed[:, order[: dims - 1]] + 1) % levels
            assert not torch.equal(
                params_in_order(model, member, first_changed)[:, -1], base[:, -1]
            )


@pytest.mark.parametrize(
    "cls, config",
    [
        (MADE, {"hidden": [10], "masks": 5, "order_agnostic": True}),
        (NADE, {"hidden": 6, "order_agnostic": True, "test_orderings": 4}),
    ],
)
def test_ensemble_is_log_mean_exp_of_members(cls, config, scrambled, all_images):
    model = scrambled(cls, (1, 2, 4), 2, config)
    x = torch.from_numpy(all_images((1, 2, 4), 2)).reshape(256, -1).long()
    with torch.no_grad():
        if cls is MADE:
            members = torch.stack([model.log_prob_mask(x, m) for m in range(5)])
        else:
            members = torch.stack([model.reference_log_prob(x, o) for o in model.test_orders])
    ensemble = model.log_prob(x)
    torch.testing.assert_close(ensemble, log_mean_exp(members, 0))
    # not the likelihood of averaged logits, and not any single member
    assert not torch.allclose(ensemble, members[0])
    assert torch.logsumexp(ensemble.double(), 0).exp().item() == pytest.approx(1.0, abs=1e-5)
