"""The verdict follows the numbers: each outcome from rows built to give it."""

import pytest

from arbench.report import verdict


def row(model, frechet, kernel, se=0.1):
    return {
        "model": model,
        "frechet_distance": frechet,
        "frechet_distance_se": se,
        "kernel_distance": kernel,
        "kernel_distance_se": se / 10,
        "diversity": 1.0,
        "novelty": 0.2,
        "copied_fraction": 0.0,
    }


@pytest.mark.parametrize(
    "ours, theirs, outcome",
    [
        ((1.0, 0.10), (3.0, 0.30), "supported"),
        ((1.0, 0.30), (3.0, 0.30), "supported"),  # one distance separates, the other ties
        ((3.0, 0.30), (1.0, 0.10), "contradicted"),
        ((1.0, 0.30), (3.0, 0.10), "not resolved"),  # they point in opposite directions
        ((1.0, 0.10), (1.1, 0.105), "not resolved"),  # within two standard errors
    ],
)
def test_verdict_outcome_follows_the_distances(ours, theirs, outcome):
    rows = [row("made", *ours), row("gmm", *theirs), row("real", 0.5, 0.05)]
    assert f"**Verdict on d: {outcome}**" in verdict("d", rows, test_diversity=1.0)


def test_the_best_model_of_each_family_is_compared():
    rows = [row("nade", 5.0, 0.5), row("made", 1.0, 0.1), row("gmm", 3.0, 0.3), row("mob", 9, 1)]
    text = verdict("d", rows, test_diversity=1.0)
    assert "for MADE against 3.000 for GMM" in text and "supported" in text


def test_without_a_mixture_there_is_no_verdict():
    assert "not tested" in verdict("d", [row("made", 1.0, 0.1)], test_diversity=1.0)
