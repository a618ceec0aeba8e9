"""Error bars are instruments: the standard error a set is given must match the spread of
independent draws, a too-small one is caught, and the stage measures both sources alike."""

import json

import numpy as np
import pytest

from arbench.core.plan import METRICS
from arbench.data import load_dataset
from arbench.data.format import save_dataset
from arbench.error_check import check, real_draws
from arbench.metrics.error_bars import TOLERANCE, judge, pooled_ratio
from arbench.metrics.measurement import Reference, measure
from arbench.metrics.spaces import FeatureSpaces, train_features
from arbench.train import train
from arbench.training import checkpoints


def draws_of(values, se):
    return [{m: {"value": float(v), "se": se} for m in METRICS} for v in values]


def test_an_error_bar_too_small_for_the_spread_of_draws_is_caught():
    values = np.random.default_rng(0).normal(0, 1.0, size=30)
    spread = float(values.std(ddof=1))
    honest = judge({"network": draws_of(values, spread)})
    assert all(found["within"] for found in honest.values())
    assert honest["recall"]["ratio"] == pytest.approx(1.0)
    # the old error, halves of both sets divided by sqrt(2): about 0.7 of the truth
    small = judge({"network": draws_of(values, 0.7 * spread)})
    assert small["recall"]["ratio"] == pytest.approx(1 / 0.7)
    assert not any(found["within"] for found in small.values())
    loose = judge({"network": draws_of(values, 2 * spread)})
    assert not loose["coverage"]["within"]


def test_sources_are_pooled_by_their_degrees_of_freedom_and_too_few_draws_say_nothing():
    sources = {
        "network": {"draws": 21, "ratio": 1.0},
        "real": {"draws": 6, "ratio": 2.0},
        "few": {"draws": 2, "ratio": 100.0},  # fewer than 3 draws: not counted
    }
    assert pooled_ratio(sources) == pytest.approx(np.sqrt((20 * 1 + 5 * 4) / 25))
    unchecked = judge({"real": draws_of([1.0, 2.0], 0.5)})
    assert unchecked["recall"] == {"sources": {}, "ratio": None, "within": False}


def blobs(count, rng, shape=(1, 8, 8)):
    return (rng.random((count, *shape)) < rng.uniform(0.1, 0.5, (count, 1, 1, 1))).astype(np.uint8)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A binary dataset, its features and a mixture of Bernoullis trained on it."""
    folder = tmp_path_factory.mktemp("errors")
    rng = np.random.default_rng(0)
    splits = {k: blobs(n, rng) for k, n in (("train", 1600), ("valid", 200), ("test", 300))}
    data_path = save_dataset(folder / "d.npz", splits, 2, {"source": "test"})
    data = load_dataset(data_path)
    checkpoints.save(train_features(data, {"epochs": 1}), folder / "f.pt")
    train(data_path, "mob", {"components": 4}, folder / "m.pt")
    return data_path, folder / "f.pt", folder / "m.pt", folder


def test_real_draws_are_disjoint_sets_of_the_training_and_valid_images(small_run):
    data = load_dataset(small_run[0])
    sets = real_draws(data, 100, 30)
    assert len(sets) == 18  # 1,800 training and valid images hold 18 sets of 100
    rows = np.concatenate([s.reshape(len(s), -1) for s in sets])
    pool = np.concatenate([data.train, data.valid]).reshape(1800, -1)
    assert len(rows) == len(pool)
    # every set is drawn from the pool, no image twice (by position: duplicates by content exist)
    assert sorted(map(bytes, rows)) == sorted(map(bytes, pool))


@pytest.mark.slow
def test_the_stage_compares_every_metric_on_independent_draws_of_both_sources(small_run):
    data_path, features, model, folder = small_run
    result = check(data_path, features, model, 100, 6, folder / "e.json")
    assert json.loads((folder / "e.json").read_text())["images_per_set"] == 100
    assert len(result["draws"]["network"]) == 6 and len(result["draws"]["real"]) == 6
    for metric in METRICS:
        judged = result["metrics"][metric]
        assert set(judged["sources"]) == {"network", "real"}
        assert judged["within"] == (TOLERANCE[0] <= judged["ratio"] <= TOLERANCE[1])
    # the spread of draws and the errors they are given agree in scale, metric by metric
    ratios = [result["metrics"][m]["ratio"] for m in METRICS]
    assert 0.5 < float(np.median(ratios)) < 2.0


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


def test_a_dataset_without_a_network_checks_real_draws_alone(small_run, tmp_path):
    data_path, features, _, _ = small_run
    data = load_dataset(data_path)
    splits = {"train": data.train[:400], "valid": data.valid, "test": data.test}
    path = save_dataset(tmp_path / "s.npz", splits, 2, {"source": "test"})
    result = check(path, features, None, 100, 3, tmp_path / "e.json")
    assert result["network"] is None and set(result["draws"]) == {"real"}
    assert len(result["draws"]["real"]) == 3
