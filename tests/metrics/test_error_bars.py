"""Error bars are instruments, and the error-bar check is a calibration: an error found too small
for the spread of independent draws is scaled up by the upper limit of its measured ratio, one
found too large is kept, one at a boundary takes the spread the draws measured; real draws that
overlap are corrected for it; the stage measures every source alike."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from arbench.core.plan import METRICS
from arbench.data import load_dataset
from arbench.data.format import save_dataset
from arbench.error_check import check, real_draws
from arbench.features import build
from arbench.metrics.error_bars import calibrated, calibration, interval, judge
from arbench.metrics.measurement import Reference, measure
from arbench.metrics.spaces import FeatureSpaces
from arbench.train import train
from arbench.training import checkpoints


def draws_of(values, se):
    return [{m: {"value": float(v), "se": se} for m in METRICS} for v in values]


def test_an_understated_error_is_scaled_up_by_the_upper_limit_and_an_overstated_one_kept():
    values = np.random.default_rng(0).normal(0, 1.0, size=30)
    spread = float(values.std(ddof=1))
    small = judge({"model": draws_of(values, 0.7 * spread)}, {})["recall"]
    assert small["ratio"] == pytest.approx(1 / 0.7)
    assert small["low"] < small["ratio"] < small["high"] == small["scale"]
    assert calibrated(0.7 * spread, small) == pytest.approx(0.7 * spread * small["high"])
    assert calibrated(0.7 * spread, small) > spread  # conservative: above the measured spread
    loose = judge({"model": draws_of(values, 2 * spread)}, {})["coverage"]
    assert loose["ratio"] == pytest.approx(0.5) and loose["scale"] == 1.0
    assert calibrated(2 * spread, loose) == 2 * spread  # kept: a conservative error is not wrong
    assert "kept" in loose["reading"]


def test_an_error_of_zero_whose_draws_spread_takes_their_spread_and_no_metric_is_dropped():
    values = [1.0, 0.98, 1.0, 0.99, 1.0]
    judged = judge({"model": draws_of(values, 0.0)}, {})
    boundary = judged["coverage"]
    assert boundary["at_boundary"] == ["model"] and boundary["ratio"] is None
    assert calibrated(0.0, boundary) == pytest.approx(np.std(values, ddof=1))
    flat = judge({"model": draws_of([1.0] * 5, 0.0)}, {})["coverage"]
    assert flat["ratio"] is None and calibrated(0.0, flat) == 0.0  # nothing measurable
    assert set(judged) == set(METRICS)


def test_sources_are_pooled_by_their_degrees_of_freedom_and_too_few_draws_say_nothing():
    sources = {
        "model": {"draws": 21, "ratio": 1.0, "given_se": 1.0, "spread": 1.0},
        "real": {"draws": 6, "ratio": 2.0, "given_se": 1.0, "spread": 2.0},
        "few": {"draws": 2, "ratio": 100.0, "given_se": 1.0, "spread": 100.0},
    }
    found = calibration(sources)
    assert found["ratio"] == pytest.approx(np.sqrt((20 * 1 + 5 * 4) / 25))
    assert found["freedom"] == 25


def test_the_ratios_interval_covers_the_truth_as_often_as_it_says():
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(400):
        spread = float(rng.normal(0, 1.0, 20).std(ddof=1))
        low, high = interval(spread / 1.0, 19)
        covered += low <= 1.0 <= high
    assert abs(covered / 400 - 0.95) < 0.04
    low, high = interval(1.0, 19)
    assert high == pytest.approx(math.sqrt(19 / stats.chi2.ppf(0.025, 19)))


def blobs(count, rng, shape=(1, 8, 8)):
    return (rng.random((count, *shape)) < rng.uniform(0.1, 0.5, (count, 1, 1, 1))).astype(np.uint8)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A binary dataset, its features and a mixture of Bernoullis trained on it."""
    folder = tmp_path_factory.mktemp("errors")
    rng = np.random.default_rng(0)
    splits = {k: blobs(n, rng) for k, n in (("train", 1600), ("valid", 200), ("test", 300))}
    data_path = save_dataset(folder / "d.npz", splits, 2, {"source": "test"})
    build(data_path, folder / "f.pt", bins=10, settings={"epochs": 1})
    train(data_path, "mob", {"components": 4}, folder / "m.pt")
    return data_path, folder / "f.pt", folder / "m.pt", folder


def test_real_draws_are_disjoint_where_the_pool_holds_them_and_corrected_where_not(small_run):
    data = load_dataset(small_run[0])
    sets, overlap = real_draws(data, 100, 18)
    assert len(sets) == 18 and overlap == 0.0  # 1,800 training and valid images hold 18 of 100
    rows = np.concatenate([s.reshape(len(s), -1) for s in sets])
    pool = np.concatenate([data.train, data.valid]).reshape(1800, -1)
    assert sorted(map(bytes, rows)) == sorted(map(bytes, pool))
    sets, overlap = real_draws(data, 100, 30)
    assert len(sets) == 30 and overlap == pytest.approx(100 / 1800)


def test_overlapping_draws_spread_as_fresh_ones_once_corrected():
    """Sets of 500 from a pool of 2,000 vary less than fresh sets of 500; divided by
    sqrt(1 - n/N) their spread is the fresh one's."""
    rng = np.random.default_rng(4)
    pool = rng.normal(size=2_000)
    from_pool = [pool[rng.choice(2_000, 500, replace=False)].mean() for _ in range(2_000)]
    fresh = np.std([rng.normal(size=500).mean() for _ in range(2_000)], ddof=1)
    corrected = np.std(from_pool, ddof=1) / math.sqrt(1 - 500 / 2_000)
    assert corrected == pytest.approx(fresh, rel=0.08)


@pytest.mark.slow
def test_the_stage_calibrates_every_metric_on_independent_draws_of_every_source(small_run):
    data_path, features, model, folder = small_run
    result = check(data_path, features, [model, model], 100, 6, folder / "e.json")
    assert json.loads((folder / "e.json").read_text())["images_per_set"] == 100
    assert set(result["draws"]) == {"m", "real"} and len(result["draws"]["real"]) == 6
    for metric, judged in result["metrics"].items():
        assert judged["scale"] >= 1.0
        assert "c2st_accuracy" in result["metrics"]
        if judged["ratio"] is not None:
            assert judged["low"] <= judged["ratio"] <= judged["high"], metric


def test_subset_errors_match_the_spread_of_independent_draws(small_run):
    """The standard error of one set, from its subsets, against the spread of 24 sets drawn
    independently from the same source (the MoB: fresh draws are free), on the k-NN measures
    and distances in learned features."""
    data_path, features, model, _ = small_run
    data = load_dataset(data_path)
    reference = Reference.of(data, FeatureSpaces.load(features))
    mob = checkpoints.load_model(model)
    found = [
        measure(mob.sample(100, seed=i), reference, seed=i, classifier_seeds=()) for i in range(24)
    ]
    for metric in ("frechet_learned", "kid_learned", "precision", "recall", "coverage"):
        spread = np.std([f[metric]["value"] for f in found], ddof=1)
        given = np.sqrt(np.mean([f[metric]["se"] ** 2 for f in found]))
        # 24 draws know the spread to about 15%
        assert 0.6 < spread / given < 1.6, (metric, spread / given)
