"""NDB: bins of the training pixels and a test per bin, on histograms whose answer is known."""

import numpy as np
import pytest

from arbench.metrics.bins import (
    MAX_BINS,
    MIN_BINS,
    Bins,
    bins_for,
    different_bins,
    jensen_shannon,
    ndb,
)


def test_identical_histograms_differ_in_no_bin_and_have_no_divergence():
    counts = np.array([300, 200, 500, 1000])
    assert different_bins(counts, counts * 7) == 0
    assert jensen_shannon(counts, counts * 7) == pytest.approx(0, abs=1e-12)


def test_disjoint_histograms_diverge_by_one_bit():
    assert jensen_shannon(np.array([10, 0]), np.array([0, 10])) == pytest.approx(1.0)


def test_an_emptied_bin_is_found_and_the_rest_are_not():
    reference = np.full(20, 5_000)
    counts = np.full(20, 158)  # a dropped mode: its bin empty, the others a little fuller
    counts[3], counts[4] = 0, 156
    assert different_bins(counts, reference) == 1


def test_sets_drawn_from_the_reference_proportions_are_rarely_flagged():
    """The false discovery rate holds: sets of 3,000 drawn from the training proportions flag a
    bin in few of 200 trials (Benjamini-Hochberg at 5% keeps the family-wise rate near 5% when
    every bin is alike)."""
    rng = np.random.default_rng(0)
    proportions = rng.dirichlet(np.full(100, 5.0))
    reference = rng.multinomial(50_000, proportions)
    flagged = [different_bins(rng.multinomial(3_000, proportions), reference) for _ in range(200)]
    assert np.mean(np.array(flagged) > 0) < 0.1


def test_a_dropped_mode_flags_its_bins_and_reads_worse_than_a_real_draw():
    rng = np.random.default_rng(1)
    proportions = np.full(100, 0.01)
    reference = rng.multinomial(50_000, proportions)
    dropped = proportions.copy()
    dropped[:12] = 0  # a mode of 12% of the images, spread over 12 bins
    dropped /= dropped.sum()
    real = ndb(rng.multinomial(3_000, proportions), reference)
    missing = ndb(rng.multinomial(3_000, dropped), reference)
    assert missing["ndb"] >= 0.12 > real["ndb"]
    assert missing["ndb_jsd"] > 10 * real["ndb_jsd"]


def test_bins_of_clustered_pixels_hold_their_clusters():
    rng = np.random.default_rng(2)
    centres = rng.random((4, 16))
    which = rng.integers(0, 4, 2_000)
    pixels = np.clip(centres[which] + rng.normal(0, 0.02, (2_000, 16)), 0, 1)
    bins = Bins.fit(pixels, 4)
    assert sorted(bins.train_counts.tolist()) == sorted(np.bincount(which).tolist())
    assert bins.counts(pixels[:100]).sum() == 100


@pytest.mark.parametrize("size, expected", [(30, MIN_BINS), (3_000, 100), (10**6, MAX_BINS)])
def test_a_set_is_binned_by_its_size(size, expected):
    assert bins_for(size) == expected
