"""Samples follow the model's own probabilities (chi-square on tiny inputs, fixed seeds)."""

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from arbench.models.made import MADE
from arbench.models.mob import MixtureOfBernoullis
from arbench.models.nade import NADE
from arbench.models.pixelcnn import PixelCNN

CASES = [
    (NADE, (1, 1, 3), 2, {"hidden": 5, "ordering": "random"}),
    (NADE, (1, 1, 3), 2, {"hidden": 5, "order_agnostic": True, "test_orderings": 3}),
    (NADE, (1, 1, 2), 3, {"hidden": 5, "output": "categorical"}),
    (NADE, (1, 1, 2), 4, {"hidden": 5, "output": "logistic_mixture", "components": 2}),
    (MADE, (1, 1, 3), 2, {"hidden": [8, 8]}),
    (MADE, (1, 1, 3), 2, {"hidden": [8], "masks": 3, "order_agnostic": True}),
    (MADE, (1, 1, 2), 3, {"hidden": [8], "output": "categorical", "masks": 2}),
    (MADE, (2, 1, 1), 4, {"hidden": [8], "output": "logistic_mixture", "components": 2}),
    (PixelCNN, (1, 2, 2), 2, {"channels": 6, "head": 6, "layers": 2, "first_kernel": 3}),
    (PixelCNN, (3, 1, 1), 3, {"channels": 6, "head": 6, "layers": 2, "output": "categorical"}),
    (
        PixelCNN,
        (2, 1, 2),
        4,
        {"channels": 6, "head": 6, "layers": 2, "output": "logistic_mixture", "components": 2},
    ),
]
SAMPLES = 20_000


def frequency_test(model, shape, levels, all_images):
    images = all_images(shape, levels)
    expected = torch.exp(model.log_prob(images).double()).numpy()
    samples = model.sample(SAMPLES, seed=123)
    assert samples.shape == (SAMPLES, *shape) and samples.dtype == np.uint8
    dims = int(np.prod(shape))
    # every_image enumerates with the last dimension fastest: a base-`levels` number
    codes = samples.reshape(SAMPLES, dims).astype(np.int64) @ levels ** np.arange(dims)[::-1]
    observed = np.bincount(codes, minlength=len(images))
    return chisquare(observed, expected * SAMPLES / expected.sum())


@pytest.mark.parametrize(
    "cls, shape, levels, config",
    CASES,
    ids=[f"{c.__name__}-{i}" for i, (c, *_rest) in enumerate(CASES)],
)
def test_sample_frequencies_match_model_probabilities(
    cls, shape, levels, config, scrambled, all_images
):
    model = scrambled(cls, shape, levels, config)
    result = frequency_test(model, shape, levels, all_images)
    assert result.pvalue > 1e-3, f"chi-square {result.statistic:.1f}, p={result.pvalue:.2g}"


def test_mixture_of_bernoullis_samples_match(all_images):
    shape = (1, 1, 3)
    rng = np.random.default_rng(0)
    data = (rng.random((500, *shape)) < [[[0.9, 0.2, 0.5]]]).astype(np.uint8)
    model = MixtureOfBernoullis(shape, 2, {"components": 2, "max_iter": 20})
    model.fit(data)
    result = frequency_test(model, shape, 2, all_images)
    assert result.pvalue > 1e-3


def test_a_wrong_sampler_is_detected(scrambled, all_images):
    """The frequency check has teeth: samples from another model fail it."""
    shape, levels, config = (1, 1, 3), 2, {"hidden": 5}
    model, other = scrambled(NADE, shape, levels, config), scrambled(NADE, shape, levels, config)
    with torch.no_grad():
        other.b.add_(0.5)
    model.sample = other.sample
    assert frequency_test(model, shape, levels, all_images).pvalue < 1e-6


def test_same_seed_same_samples(scrambled):
    model = scrambled(MADE, (1, 2, 3), 2, {"hidden": [8], "masks": 2})
    np.testing.assert_array_equal(model.sample(50, seed=4), model.sample(50, seed=4))
    assert not np.array_equal(model.sample(50, seed=4), model.sample(50, seed=5))


@pytest.mark.parametrize(
    "shape, levels, config",
    [
        ((1, 5, 6), 2, {"layers": 3, "kernel": 3, "first_kernel": 5}),
        ((3, 4, 3), 5, {"layers": 2, "output": "categorical"}),
        ((3, 3, 4), 256, {"layers": 4, "output": "logistic_mixture", "components": 3}),
    ],
)
def test_pixelcnn_fast_sampler_draws_what_one_full_pass_per_pixel_draws(
    shape, levels, config, scrambled
):
    """Computing only the rows and columns the next pixel needs changes nothing: the same
    generator gives the same images as the naive sampler, with and without known pixels."""
    model = scrambled(PixelCNN, shape, levels, {"channels": 8, "head": 8, **config})
    model.eval()
    with torch.no_grad():
        fast = model.fast_sample(40, torch.Generator().manual_seed(9))
        naive = model.naive_sample(40, torch.Generator().manual_seed(9))
        assert torch.equal(fast, naive)
        assert len(torch.unique(fast.flatten(1), dim=0)) > 1
        known = torch.zeros(shape, dtype=torch.bool)
        known[:, : shape[1] // 2] = True
        given = (naive.flatten(1).flip(0), known.flatten())
        fast = model.fast_sample(40, torch.Generator().manual_seed(2), given)
        naive = model.naive_sample(40, torch.Generator().manual_seed(2), given)
    assert torch.equal(fast, naive)
    assert torch.equal(fast.flatten(1)[:, known.flatten()], given[0][:, known.flatten()])
