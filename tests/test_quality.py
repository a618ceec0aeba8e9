"""Each sample-quality measurement on inputs whose answer is known."""

import numpy as np
import pytest

from arbench.data.format import save_dataset
from arbench.quality import (
    FeatureSpace,
    assess,
    diversity,
    frechet_distance,
    kernel_distance,
    measure,
    nearest,
)


@pytest.fixture
def points():
    return np.random.default_rng(0).normal(size=(400, 5))


def test_identical_sets_are_at_distance_zero(points):
    assert frechet_distance(points, points) == pytest.approx(0, abs=1e-8)
    assert kernel_distance(points, points, bandwidth=1.0) == pytest.approx(0, abs=1e-12)


def test_frechet_distance_of_a_shifted_set_is_the_squared_shift(points):
    shift = np.array([1.0, -2.0, 0.0, 0.5, 0.0])
    assert frechet_distance(points, points + shift) == pytest.approx((shift**2).sum(), rel=1e-6)


def test_frechet_distance_sees_a_change_of_spread(points):
    # Same mean, covariance scaled by 4 in every direction: tr(S + 4S - 2*2S) = tr(S).
    expected = np.trace(np.cov(points, rowvar=False))
    assert frechet_distance(points, 2 * points) == pytest.approx(
        expected + (points.mean(0) ** 2).sum(), rel=1e-6
    )


@pytest.mark.parametrize("rows, constant_columns", [(10, 0), (8, 16), (20, 10)])
def test_frechet_distance_stays_exact_for_singular_covariances(rows, constant_columns):
    # Fewer images than features, as in a small sample's bootstrap replicate: rank-deficient
    # covariances, where a general matrix square root loses digits or returns NaN.
    images = np.random.default_rng(0).normal(size=(rows, 32))
    images[:, :constant_columns] = 0.0
    expected = np.trace(np.cov(images, rowvar=False)) + (images.mean(0) ** 2).sum()
    assert frechet_distance(images, 2 * images) == pytest.approx(expected, rel=1e-11)


def test_kernel_distance_grows_with_the_shift_and_is_symmetric(points):
    near = kernel_distance(points, points + 0.2, bandwidth=1.0)
    far = kernel_distance(points, points + 2.0, bandwidth=1.0)
    assert 0 < near < far
    assert kernel_distance(points + 2.0, points, bandwidth=1.0) == pytest.approx(far)


def test_diversity_of_copies_is_zero_and_of_two_points_their_distance():
    assert diversity(np.ones((10, 3))) == 0
    assert diversity(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)


def test_a_copied_training_image_has_novelty_zero_and_others_their_rms_distance():
    train = np.random.default_rng(1).random((50, 16))
    grey = np.full((1, 16), 0.5)
    candidates = np.vstack([train[17:18], grey])
    distance, index = nearest(candidates, np.vstack([train, np.zeros((1, 16))]), chunk=7)
    assert distance[0] == 0 and index[0] == 17
    brute = np.sqrt(((np.vstack([train, np.zeros((1, 16))]) - grey) ** 2).mean(1))
    assert distance[1] == pytest.approx(brute.min()) and index[1] == brute.argmin()


def test_principal_features_center_the_training_mean():
    pixels = np.random.default_rng(2).random((300, 20))
    space = FeatureSpace.fit(pixels, components=4)
    assert space(pixels.mean(0, keepdims=True)) == pytest.approx(np.zeros((1, 4)), abs=1e-12)
    np.testing.assert_allclose(space.components @ space.components.T, np.eye(4), atol=1e-10)


def test_measuring_the_test_images_themselves_gives_zero_distance_and_the_test_novelty():
    rng = np.random.default_rng(3)
    train, test = rng.random((200, 16)), rng.random((60, 16))
    space = FeatureSpace.fit(train, components=4)
    result = measure(test, test, train, space, bandwidth=1.0)
    assert result["frechet_distance"]["value"] == pytest.approx(0, abs=1e-8)
    assert result["kernel_distance"]["value"] == pytest.approx(0, abs=1e-12)
    assert result["frechet_distance"]["se"] > 0  # bootstrap replicates are not the same set
    copied = measure(train[:30], test, train, space, bandwidth=1.0)
    assert copied["novelty"]["value"] == 0 and copied["copied_fraction"] == 1
    assert copied["nearest_train_index"] == list(range(30))


def test_assess_writes_model_and_real_reference(tmp_path):
    rng = np.random.default_rng(4)
    splits = {
        k: (rng.random((n, 1, 4, 4)) < 0.3).astype(np.uint8)
        for k, n in (("train", 300), ("valid", 40), ("test", 50))
    }
    data = save_dataset(tmp_path / "d.npz", splits, 2, {"source": "test"})
    np.savez(tmp_path / "s.npz", samples=splits["train"][:20])
    result = assess(data, tmp_path / "s.npz", tmp_path / "q.json")
    assert result["model"]["copied_fraction"] == 1 and result["model"]["novelty"]["value"] == 0
    assert result["real"]["images"] == 20
    assert (tmp_path / "q.json").exists()
