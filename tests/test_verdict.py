"""The verdict follows the evidence by its stated rule: each outcome from measurements built to
give it, and a metric that failed its checks never votes."""

import pytest

from arbench import convergence
from arbench.sample_metrics import METRICS
from arbench.verdict import decide, evidence, still_improving


def measured(**values):
    """Every metric at a neutral value with SE 0.01, except those given as (value, se)."""
    found = {metric: {"value": 1.0, "se": 0.01} for metric in METRICS}
    for metric, (value, se) in values.items():
        found[metric] = {"value": value, "se": se}
    return found


def checks(failing=()):
    return {"metrics": {m: {"passed": m not in failing, "checks": {}} for m in METRICS}}


def outcome(models, failing=()):
    return decide(evidence(models, checks(failing)))


def test_supported_when_two_passing_metrics_favour_the_autoregressive_model_and_none_opposes():
    models = {
        "made": measured(frechet_learned=(10.0, 1.0), precision=(0.9, 0.01)),
        "gmm": measured(frechet_learned=(30.0, 1.0), precision=(0.5, 0.01)),
    }
    result = outcome(models)
    assert result["outcome"] == "supported"
    assert "frechet_learned" in result["reason"] and "precision" in result["reason"]


def test_one_metric_alone_decides_nothing():
    models = {
        "made": measured(frechet_learned=(10.0, 1.0)),
        "gmm": measured(frechet_learned=(30.0, 1.0)),
    }
    assert outcome(models)["outcome"] == "not resolved"


def test_contradicted_in_the_mirror_case_and_unresolved_when_metrics_disagree():
    mirror = {
        "nade": measured(recall=(0.3, 0.01), coverage=(0.2, 0.01)),
        "mob": measured(recall=(0.8, 0.01), coverage=(0.7, 0.01)),
    }
    assert outcome(mirror)["outcome"] == "contradicted"
    split = {
        "nade": measured(recall=(0.3, 0.01), coverage=(0.2, 0.01), precision=(0.9, 0.01)),
        "mob": measured(recall=(0.8, 0.01), coverage=(0.7, 0.01), precision=(0.2, 0.01)),
    }
    assert outcome(split)["outcome"] == "not resolved"


def test_a_metric_that_failed_its_checks_does_not_vote():
    # Only the PCA distances favour the mixture: while they pass they decide; once they fail
    # their checks, nothing favours either side
    models = {
        "made": measured(frechet_pca=(9.0, 0.1), kid_pca=(0.9, 0.01)),
        "gmm": measured(frechet_pca=(1.0, 0.1), kid_pca=(0.1, 0.01)),
    }
    assert outcome(models)["outcome"] == "contradicted"
    counted = outcome(models, failing=("frechet_pca", "kid_pca"))
    assert counted["outcome"] == "not resolved"
    assert "0 the mixture" in counted["reason"] and "frechet_pca" not in counted["reason"]


def test_within_two_standard_errors_favours_no_side():
    rows = evidence(
        {
            "made": measured(c2st_accuracy=(0.60, 0.02)),
            "gmm": measured(c2st_accuracy=(0.63, 0.02)),
        },
        checks(),
    )
    row = next(r for r in rows if r["metric"] == "c2st_accuracy")
    assert row["favours"] is None and row["better_by"] == pytest.approx(0.03)


def test_the_best_of_each_family_is_compared():
    rows = evidence(
        {
            "nade": measured(frechet_learned=(50.0, 1.0)),
            "made": measured(frechet_learned=(10.0, 1.0)),
            "gmm": measured(frechet_learned=(30.0, 1.0)),
            "mob": measured(frechet_learned=(90.0, 1.0)),
        },
        checks(),
    )
    row = next(r for r in rows if r["metric"] == "frechet_learned")
    assert (row["autoregressive"], row["mixture"]) == ("made", "gmm")


def test_too_few_passing_metrics_or_no_mixture_is_not_tested():
    models = {"made": measured(), "gmm": measured()}
    assert outcome(models, failing=tuple(METRICS)[1:])["outcome"] == "not tested"
    assert decide(evidence({"made": measured()}, checks()))["outcome"] == "not tested"


def test_runs_of_one_model_are_pooled_and_their_spread_counts():
    # Two seeds of MADE that disagree: their mean beats the mixture, but not beyond the spread
    runs = {
        "made": measured(frechet_learned=(5.0, 0.5), recall=(0.9, 0.01)),
        "made.r1": measured(frechet_learned=(25.0, 0.5), recall=(0.3, 0.01)),
        "gmm": measured(frechet_learned=(20.0, 0.5), recall=(0.5, 0.01)),
    }
    rows = {r["metric"]: r for r in evidence(runs, checks())}
    assert rows["frechet_learned"]["autoregressive"] == "made"
    assert rows["frechet_learned"]["autoregressive_value"]["value"] == pytest.approx(15.0)
    assert rows["frechet_learned"]["autoregressive_value"]["se"] == pytest.approx(10.0)
    assert rows["frechet_learned"]["favours"] is None
    single = evidence({"made": runs["made"], "gmm": runs["gmm"]}, checks())
    assert (
        next(r for r in single if r["metric"] == "frechet_learned")["favours"] == "autoregressive"
    )


SUPPORTING = {
    "made": measured(frechet_learned=(10.0, 1.0), precision=(0.9, 0.01)),
    "gmm": measured(frechet_learned=(30.0, 1.0), precision=(0.5, 0.01)),
}


def record(ended_by, rate, epochs=30, nll=100.0):
    return {
        "ended_by": ended_by,
        "improvement_per_epoch": rate,
        "epochs": epochs,
        "resumed": 0,
        "best_valid_nll": nll,
    }


def test_a_model_capped_while_still_improving_leaves_the_comparison_not_decided():
    # tolerance: 0.05 nats/image an epoch at an NLL of 100
    training = {
        "made": record(convergence.EPOCH_CAP, 4.56),
        "gmm": record(convergence.CONVERGED, 1e-4, 12),
    }
    unfinished = still_improving(training)
    assert set(unfinished) == {"made"}
    result = decide(evidence(SUPPORTING, checks()), unfinished)
    assert result["outcome"] == "not decided"
    assert result["reason"] == "MADE still improving (4.56 nats/epoch when its epoch cap ended it)"


@pytest.mark.parametrize(
    "made, gmm, decided",
    [
        (record(convergence.EARLY_STOPPING, 0.0), record(convergence.CONVERGED, 0.0), True),
        # a cap that ended a run on its plateau, under the tolerance, does not hold it back
        (record(convergence.EPOCH_CAP, 0.04), record(convergence.CONVERGED, 0.0), True),
        (record(convergence.TIME_CAP, 0.2), record(convergence.CONVERGED, 0.0), False),
        # either family: a mixture whose EM ran out of iterations while still gaining
        (record(convergence.EARLY_STOPPING, 0.0), record(convergence.ITERATION_CAP, 3.0), False),
        (record(convergence.EARLY_STOPPING, 0.0), None, False),  # how it ended was not recorded
    ],
)
def test_only_training_a_cap_ended_above_the_tolerance_holds_the_verdict_back(made, gmm, decided):
    unfinished = still_improving({"made": made, "gmm": gmm})
    result = decide(evidence(SUPPORTING, checks()), unfinished)
    assert (result["outcome"] == "supported") == decided, result


def check_with_gaussian_behind_by(z_by_metric: dict[str, float]) -> dict:
    """A metric check whose one-Gaussian set trails real images by z standard errors."""
    real = measured()
    gaussian = measured()
    for metric, z in z_by_metric.items():
        sign = 1 if METRICS[metric][0] == "lower" else -1
        gaussian[metric] = {"value": 1.0 + sign * z * 0.01 * 2**0.5, "se": 0.01}
    return {
        **checks(),
        "images_per_set": 300,
        "sets": {"real (valid)": real, "one Gaussian": gaussian},
    }


def test_a_set_size_that_cannot_tell_one_gaussian_from_real_images_decides_nothing():
    weak = check_with_gaussian_behind_by({"c2st_accuracy": 2.9, "recall": 10.0})
    result = decide(evidence(SUPPORTING, weak), {}, weak)
    assert result["outcome"] == "not decided"
    assert "cannot resolve the question at 300 images a set" in result["reason"]
    strong = check_with_gaussian_behind_by({"c2st_accuracy": 3.1, "recall": 10.0})
    assert decide(evidence(SUPPORTING, strong), {}, strong)["outcome"] == "supported"
