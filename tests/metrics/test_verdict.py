"""The verdict follows the evidence by its stated rule: each outcome from measurements built to
give it, a metric that failed its checks or whose error bar is off never votes, nothing beats
real images, the rule asks the same of both families, a family with more members gains nothing
from the noise of the draw it is judged on, and how often the verdict comes out over resamples
is reported beside it."""

import numpy as np
import pytest

from arbench.core.plan import METRICS
from arbench.metrics.known_answers import GAUSSIAN, REAL, RESOLVES, RESOLVING_SES
from arbench.metrics.measures import no_better_than_real
from arbench.metrics.verdict import (
    UNSTABLE,
    by_model,
    evidence,
    headline,
    pair_matrix,
    resampled,
    still_improving,
    verdict,
    voting_parts,
)
from arbench.training import convergence

FAR = 1e9  # a real-set value no neutral measurement reaches


def measured(**values):
    """Every metric at a neutral value with SE 0.01, except those given as (value, se)."""
    found = {metric: {"value": 1.0, "se": 0.01} for metric in METRICS}
    for metric, (value, se) in values.items():
        found[metric] = {"value": value, "se": se}
    return found


def checks(failing=(), loose=(), **real):
    """A metric check and an error-bar check: every metric passes its checks in every part it
    may vote in, but those `failing`; every error bar is within tolerance but those `loose`;
    the real set's values are out of reach unless given as (value, se)."""
    real_set = {
        metric: {"value": -FAR if METRICS[metric][0] == "lower" else FAR, "se": 0.0}
        for metric in METRICS
    }
    for metric, (value, se) in real.items():
        real_set[metric] = {"value": value, "se": se}
    check = {
        "metrics": {
            m: {
                "sound": [] if m in failing else list(METRICS[m][1]),
                RESOLVES: {"passed": True, "standard_errors": 10.0},
            }
            for m in METRICS
        },
        "sets": {REAL: real_set},
        "images_per_set": 300,
    }
    errors = {"metrics": {m: {"within": m not in loose, "ratio": 1.0} for m in METRICS}}
    return check, errors


def rows_of(judged, selection, failing=(), loose=(), **real):
    check, errors = checks(failing, loose, **real)
    return evidence(
        by_model(judged), by_model(selection), check["sets"][REAL], voting_parts(check, errors)
    )


def outcome(models, failing=(), loose=(), unfinished=None, **real):
    check, errors = checks(failing, loose, **real)
    return verdict(models, models, check, errors, unfinished or {})[1]


def row(rows, metric):
    return next(r for r in rows if r["metric"] == metric)


def test_supported_when_diversity_favours_the_autoregressive_side_and_fidelity_does_not_oppose():
    models = {
        "made": measured(recall=(0.9, 0.01), frechet_learned=(10.0, 1.0)),
        "gmm": measured(recall=(0.3, 0.01), frechet_learned=(30.0, 1.0)),
    }
    result = outcome(models)
    assert result["outcome"] == "supported"
    assert result["parts"]["diversity"]["favours"] == "autoregressive"
    assert result["parts"]["fidelity"]["autoregressive"] == ["frechet_learned"]
    assert "recall" in result["reason"] and "frechet_learned" in result["reason"]


def test_more_diverse_but_less_faithful_is_not_resolved():
    models = {
        "nade": measured(recall=(0.9, 0.01), frechet_learned=(30.0, 1.0), kid_learned=(3, 0.1)),
        "mob": measured(recall=(0.3, 0.01), frechet_learned=(10.0, 1.0), kid_learned=(1, 0.1)),
    }
    result = outcome(models)
    assert result["parts"]["fidelity"]["favours"] == "mixture"
    assert result["outcome"] == "not resolved"


def test_faithful_but_no_more_diverse_is_not_supported():
    models = {
        "nade": measured(frechet_learned=(10.0, 1.0), precision=(0.9, 0.01)),
        "mob": measured(frechet_learned=(30.0, 1.0), precision=(0.5, 0.01)),
    }
    assert outcome(models)["outcome"] == "not resolved"


def test_the_classifier_votes_in_diversity_where_it_passed_those_checks():
    models = {
        "nade": measured(c2st_accuracy=(0.55, 0.01)),
        "mob": measured(c2st_accuracy=(0.95, 0.01)),
    }
    both = outcome(models)
    assert both["parts"]["diversity"]["autoregressive"] == ["c2st_accuracy"]
    assert both["outcome"] == "supported"


def test_contradicted_when_no_part_favours_the_autoregressive_side_and_one_favours_the_mixture():
    mirror = {
        "nade": measured(recall=(0.3, 0.01), coverage=(0.2, 0.01)),
        "mob": measured(recall=(0.8, 0.01), coverage=(0.7, 0.01)),
    }
    assert outcome(mirror)["outcome"] == "contradicted"
    split = {
        "nade": measured(recall=(0.3, 0.01), coverage=(0.2, 0.01), c2st_accuracy=(0.6, 0.01)),
        "mob": measured(recall=(0.8, 0.01), coverage=(0.7, 0.01), c2st_accuracy=(0.9, 0.01)),
    }
    assert outcome(split)["outcome"] == "not resolved"


def test_a_metric_that_failed_its_checks_does_not_vote():
    # Only the PCA distances favour the mixture: while they pass they decide; once they fail
    # their checks, fidelity favours neither side
    models = {
        "made": measured(recall=(0.9, 0.01), frechet_pca=(9.0, 0.1), kid_pca=(0.9, 0.01)),
        "gmm": measured(recall=(0.3, 0.01), frechet_pca=(1.0, 0.1), kid_pca=(0.1, 0.01)),
    }
    assert outcome(models)["outcome"] == "not resolved"
    counted = outcome(models, failing=("frechet_pca", "kid_pca"))
    assert counted["outcome"] == "supported"
    assert "frechet_pca" not in counted["reason"]


def test_within_two_standard_errors_favours_no_side():
    models = {
        "made": measured(c2st_accuracy=(0.60, 0.02)),
        "gmm": measured(c2st_accuracy=(0.63, 0.02)),
    }
    found = row(rows_of(models, models), "c2st_accuracy")
    assert found["favours"] is None and found["better_by"] == pytest.approx(0.03)


def test_a_value_beyond_the_real_images_own_counts_as_real():
    # prototypes: more precise and denser than real images, far less of everywhere they reach
    models = {
        "nade": measured(precision=(0.955, 0.005), density=(0.90, 0.02), recall=(0.97, 0.01)),
        "mob": measured(precision=(0.999, 0.001), density=(1.81, 0.03), recall=(0.30, 0.02)),
    }
    real = {"precision": (0.963, 0.005), "density": (0.92, 0.02), "recall": (0.98, 0.005)}
    rows = rows_of(models, models, **real)
    assert row(rows, "precision")["mixture_value"]["value"] == 0.963
    assert row(rows, "precision")["mixture_value"]["beyond_real"] == 0.999
    assert row(rows, "precision")["favours"] is None
    assert row(rows, "density")["favours"] is None
    assert outcome(models, **real)["outcome"] == "supported"
    # read raw, the prototypes would have won fidelity and blocked the answer
    assert outcome(models)["outcome"] == "not resolved"


def test_no_better_than_real_caps_in_either_direction():
    real = {"value": 0.5, "se": 0.01}
    assert no_better_than_real("c2st_accuracy", {"value": 0.45, "se": 0.02}, real)["value"] == 0.5
    assert no_better_than_real("c2st_accuracy", {"value": 0.7, "se": 0.02}, real)["value"] == 0.7
    assert no_better_than_real("recall", {"value": 0.9, "se": 0.02}, real)["value"] == 0.5


def test_representatives_are_chosen_on_one_draw_and_compared_on_the_other():
    selection = {
        "nade": measured(recall=(0.80, 0.01)),
        "made": measured(recall=(0.70, 0.01)),
        "gmm": measured(recall=(0.40, 0.01)),
        "mob": measured(recall=(0.45, 0.01)),
    }
    judged = {
        "nade": measured(recall=(0.60, 0.01)),
        "made": measured(recall=(0.90, 0.01)),  # better here, but not chosen on this draw
        "gmm": measured(recall=(0.50, 0.01)),
        "mob": measured(recall=(0.20, 0.01)),
    }
    found = row(rows_of(judged, selection), "recall")
    assert (found["autoregressive"], found["mixture"]) == ("nade", "mob")
    assert found["autoregressive_value"]["value"] == 0.60
    assert found["mixture_value"]["value"] == 0.20


def test_each_family_is_represented_by_its_model_best_by_the_most_metrics_on_the_other_draw():
    selection = {
        "nade": measured(recall=(1.5, 0.01), coverage=(1.5, 0.01)),
        "made": measured(frechet_learned=(0.5, 0.01)),
        "gmm": measured(precision=(1.2, 0.01)),
        "mob": measured(density=(1.5, 0.01), kid_learned=(0.5, 0.01)),
    }
    rows = rows_of(selection, selection)
    assert {(r["autoregressive"], r["mixture"]) for r in rows} == {("nade", "mob")}
    # a metric that fails its checks takes no part in the choice
    rows = rows_of(selection, selection, failing=("recall", "coverage"))
    assert {r["autoregressive"] for r in rows} == {"made"}


def favour_rates(two_draws: bool, trials: int = 1000, mixtures: int = 4) -> dict[str, float]:
    """How often one metric favours each side when every model is equally good: one
    autoregressive model against `mixtures` mixtures, each draw measured with noise."""
    rng = np.random.default_rng(0)
    counts = {"autoregressive": 0, "mixture": 0}
    names = ["nade", *["gmm", "gmm_diag", "pca_gmm", "mob"][:mixtures]]

    def draw():
        return {n: measured(recall=(0.5 + 0.01 * rng.normal(), 0.01)) for n in names}

    for _ in range(trials):
        judged = draw()
        selection = draw() if two_draws else judged
        favours = row(rows_of(judged, selection), "recall")["favours"]
        if favours:
            counts[favours] += 1
    return {side: n / trials for side, n in counts.items()}


def test_a_family_with_more_members_gains_nothing_from_noise_on_two_draws():
    one_draw, two_draws = favour_rates(False), favour_rates(True)
    # chosen on the draw it is judged on, the best of four mixtures wins by noise alone (about
    # 8% of the time, the autoregressive model almost never); chosen on another draw, each side
    # wins at the 2.3% a two-standard-error margin lets through
    assert one_draw["mixture"] > 2 * two_draws["mixture"]
    assert one_draw["mixture"] > 5 * one_draw["autoregressive"]
    assert two_draws["mixture"] < 0.045 and two_draws["autoregressive"] < 0.045
    assert abs(two_draws["mixture"] - two_draws["autoregressive"]) < 0.025


def test_too_few_passing_metrics_no_diversity_or_no_mixture_is_not_tested():
    models = {"made": measured(), "gmm": measured()}
    assert outcome(models, failing=tuple(METRICS)[1:])["outcome"] == "not tested"
    no_diversity = outcome(models, failing=("recall", "coverage", "c2st_accuracy"))
    assert no_diversity["outcome"] == "not tested" and "diversity" in no_diversity["reason"]
    single = {"made": measured()}
    assert outcome(single)["outcome"] == "not tested"


def test_runs_of_one_model_are_pooled_and_their_spread_counts():
    # Two seeds of MADE that disagree: their mean beats the mixture, but not beyond the spread
    runs = {
        "made": measured(frechet_learned=(5.0, 0.5), recall=(0.9, 0.01)),
        "made.r1": measured(frechet_learned=(25.0, 0.5), recall=(0.3, 0.01)),
        "gmm": measured(frechet_learned=(20.0, 0.5), recall=(0.5, 0.01)),
    }
    rows = rows_of(runs, runs)
    assert row(rows, "frechet_learned")["autoregressive"] == "made"
    assert row(rows, "frechet_learned")["autoregressive_value"]["value"] == pytest.approx(15.0)
    assert row(rows, "frechet_learned")["autoregressive_value"]["se"] == pytest.approx(10.0)
    assert row(rows, "frechet_learned")["favours"] is None
    single = {"made": runs["made"], "gmm": runs["gmm"]}
    assert row(rows_of(single, single), "frechet_learned")["favours"] == ("autoregressive")


SUPPORTING = {
    "made": measured(frechet_learned=(10.0, 1.0), recall=(0.9, 0.01)),
    "gmm": measured(frechet_learned=(30.0, 1.0), recall=(0.5, 0.01)),
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
    result = outcome(SUPPORTING, unfinished=unfinished)
    assert result["outcome"] == "not decided"
    assert result["reason"] == "MADE still improving (4.56 nats/epoch when epoch cap ended it)"


@pytest.mark.parametrize(
    "made, gmm, decided",
    [
        (record(convergence.EARLY_STOPPING, 0.0), record(convergence.CONVERGED, 0.0), True),
        # a cap that ended a run on its plateau, under the tolerance, does not hold it back
        (record(convergence.EPOCH_CAP, 0.04), record(convergence.CONVERGED, 0.0), True),
        (record(convergence.TIME_CAP, 0.2), record(convergence.CONVERGED, 0.0), False),
        # early stopping while the curve still fell (a decayed learning rate) is not finished
        (record(convergence.EARLY_STOPPING, 0.2), record(convergence.CONVERGED, 0.0), False),
        # either family: a mixture whose EM ran out of iterations while still gaining
        (record(convergence.EARLY_STOPPING, 0.0), record(convergence.ITERATION_CAP, 3.0), False),
        (record(convergence.EARLY_STOPPING, 0.0), None, False),  # how it ended was not recorded
    ],
)
def test_only_training_still_falling_when_it_ended_holds_the_verdict_back(made, gmm, decided):
    unfinished = still_improving({"made": made, "gmm": gmm})
    result = outcome(SUPPORTING, unfinished=unfinished)
    assert (result["outcome"] == "supported") == decided, result


def check_with_gaussian_behind_by(z_by_metric: dict[str, float]) -> tuple[dict, dict]:
    """A metric check whose one-Gaussian set trails real images by z standard errors; the
    metrics not named fail their checks."""
    check, errors = checks()
    lower = {m: METRICS[m][0] == "lower" for m in METRICS}
    real = {m: {"value": 0.1 if lower[m] else 1.0, "se": 0.01} for m in METRICS}
    gaussian = measured()
    for metric, z in z_by_metric.items():
        sign = 1 if lower[metric] else -1
        gaussian[metric] = {"value": real[metric]["value"] + sign * z * 0.01 * 2**0.5, "se": 0.01}
    for metric, judged in check["metrics"].items():
        z = z_by_metric.get(metric)
        judged["sound"] = list(METRICS[metric][1]) if z is not None else []
        judged[RESOLVES] = {"passed": z is not None and z > RESOLVING_SES, "standard_errors": z}
    check["sets"] = {REAL: real, GAUSSIAN: gaussian}
    return check, errors


def test_a_set_size_that_cannot_tell_one_gaussian_from_real_images_decides_nothing():
    models = {
        "made": measured(c2st_accuracy=(0.2, 0.01), recall=(0.99, 0.01)),
        "gmm": measured(c2st_accuracy=(0.9, 0.01), recall=(0.5, 0.01)),
    }
    weak, errors = check_with_gaussian_behind_by({"c2st_accuracy": 2.9, "recall": 10.0})
    result = verdict(models, models, weak, errors, {})[1]
    assert result["outcome"] == "not decided"
    assert "cannot resolve the question at 300 images a set" in result["reason"]
    strong, errors = check_with_gaussian_behind_by({"c2st_accuracy": 3.1, "recall": 10.0})
    assert verdict(models, models, strong, errors, {})[1]["outcome"] == "supported"


def mirrored(models: dict[str, dict]) -> dict[str, dict]:
    """The same measurements with the two families' roles swapped."""
    names = {"made": "gmm", "gmm": "made", "nade": "mob", "mob": "nade"}
    return {names[m]: found for m, found in models.items()}


@pytest.mark.parametrize(
    "models",
    [
        SUPPORTING,
        {  # more diverse and level on fidelity
            "made": measured(recall=(0.9, 0.01), coverage=(0.8, 0.01)),
            "gmm": measured(recall=(0.3, 0.01), coverage=(0.2, 0.01)),
        },
        {  # more faithful, level on diversity: neither side's answer
            "made": measured(frechet_learned=(10.0, 1.0)),
            "gmm": measured(frechet_learned=(30.0, 1.0)),
        },
        {  # more diverse, less faithful
            "made": measured(recall=(0.9, 0.01), frechet_learned=(30.0, 1.0)),
            "gmm": measured(recall=(0.3, 0.01), frechet_learned=(10.0, 1.0)),
        },
    ],
)
def test_the_rule_asks_of_the_mixture_exactly_what_it_asks_of_the_autoregressive_side(models):
    """Swapping the families' measurements swaps supported and contradicted, and leaves every
    other outcome as it was: "contradicted" needs diversity to favour the mixture, as
    "supported" needs it to favour the autoregressive side."""
    swap = {"supported": "contradicted", "contradicted": "supported"}
    found = outcome(models)["outcome"]
    assert outcome(mirrored(models))["outcome"] == swap.get(found, found)


def test_fidelity_alone_for_the_mixture_is_not_a_contradiction():
    models = {
        "made": measured(frechet_learned=(30.0, 1.0), kid_learned=(0.9, 0.01)),
        "gmm": measured(frechet_learned=(10.0, 1.0), kid_learned=(0.6, 0.01)),
    }
    assert outcome(models)["outcome"] == "not resolved"


def test_a_metric_whose_error_bar_is_off_does_not_vote():
    models = {
        "made": measured(recall=(0.9, 0.01), coverage=(0.5, 0.01)),
        "gmm": measured(recall=(0.5, 0.01), coverage=(0.5, 0.01)),
    }
    assert outcome(models)["outcome"] == "supported"
    result = outcome(models, loose=("recall",))
    assert "recall" not in result["parts"]["diversity"]["voting"]
    assert result["outcome"] == "not resolved"


def test_the_classifier_votes_only_in_the_parts_whose_checks_it_passed():
    check, errors = checks()
    check["metrics"]["c2st_accuracy"]["sound"] = ["fidelity"]
    votes = voting_parts(check, errors)
    assert votes["c2st_accuracy"] == ["fidelity"]
    assert votes["recall"] == ["diversity"] and votes["precision"] == ["fidelity"]


def with_subsets(found: dict, rng, spread: float) -> dict:
    """Measurements with the estimates of 30 subsets around each value (their scaled spread
    equals the standard error)."""
    out = {}
    for metric, value in found.items():
        deviations = rng.normal(size=30)
        deviations = (deviations - deviations.mean()) / deviations.std(ddof=1)
        subsets = value["value"] + deviations * spread / 3**0.5
        out[metric] = {**value, "se": spread, "subsets": subsets.tolist()}
    return out


def test_the_verdict_is_reported_with_how_often_resamples_give_it():
    rng = np.random.default_rng(0)
    clear = {
        m: with_subsets(found, rng, 0.01)
        for m, found in {
            "made": measured(recall=(0.9, 0.01), frechet_learned=(1.0, 0.01)),
            "made.r1": measured(recall=(0.88, 0.01), frechet_learned=(1.0, 0.01)),
            "gmm": measured(recall=(0.5, 0.01), frechet_learned=(9.0, 0.01)),
        }.items()
    }
    # recall alone votes beside a fidelity metric on which the models are far apart: other
    # level metrics would split by the noise a redraw adds
    only = tuple(m for m in METRICS if m not in ("recall", "frechet_learned"))
    check, errors = checks(failing=only, recall=(0.95, 0.01))
    check["sets"][REAL] = with_subsets(check["sets"][REAL], rng, 0.01)
    found = resampled(clear, clear, check, errors, {}, resamples=50)
    assert found == {"supported": 1.0} and headline(found) == "supported"
    # a margin of about two standard errors: another draw gives another answer often
    close = {
        m: with_subsets(found, rng, 0.01)
        for m, found in {
            "made": measured(recall=(0.528, 0.01)),
            "gmm": measured(recall=(0.5, 0.01)),
        }.items()
    }
    found = resampled(close, close, check, errors, {}, resamples=200)
    assert 0.2 < found.get("supported", 0) < 0.8
    assert headline(found) == UNSTABLE


def test_resamples_draw_one_seed_of_each_model():
    """Two seeds of MADE, one far ahead and one level with the mixture: pooled they support the
    hypothesis narrowly, resampled by seed about half the resamples do."""
    rng = np.random.default_rng(1)
    runs = {
        m: with_subsets(found, rng, 0.005)
        for m, found in {
            "made": measured(recall=(0.9, 0.005)),
            "made.r1": measured(recall=(0.5, 0.005)),
            "gmm": measured(recall=(0.5, 0.005)),
        }.items()
    }
    only = tuple(m for m in METRICS if m not in ("recall", "frechet_learned"))
    check, errors = checks(failing=only, recall=(0.95, 0.01))
    check["sets"][REAL] = with_subsets(check["sets"][REAL], rng, 0.01)
    found = resampled(runs, runs, check, errors, {}, resamples=200)
    assert 0.35 < found["supported"] < 0.65 and headline(found) == UNSTABLE


def test_every_autoregressive_run_is_compared_with_every_mixture_run():
    rng = np.random.default_rng(2)
    runs = {
        m: with_subsets(found, rng, 0.01)
        for m, found in {
            "made": measured(recall=(0.9, 0.01), frechet_learned=(1.0, 0.01)),
            "nade": measured(recall=(0.3, 0.01), frechet_learned=(9.0, 0.01)),
            "gmm": measured(recall=(0.6, 0.01), frechet_learned=(5.0, 0.01)),
            "gmm.r1": measured(recall=(0.6, 0.01), frechet_learned=(5.0, 0.01)),
        }.items()
    }
    only = tuple(m for m in METRICS if m not in ("recall", "frechet_learned"))
    check, errors = checks(failing=only, recall=(0.95, 0.01))
    check["sets"][REAL] = with_subsets(check["sets"][REAL], rng, 0.01)
    matrix = pair_matrix(runs, runs, check, errors, {}, resamples=20)
    assert set(matrix) == {"made", "nade"} and set(matrix["made"]) == {"gmm", "gmm.r1"}
    assert matrix["made"]["gmm"]["outcome"] == "supported"
    assert matrix["nade"]["gmm.r1"]["outcome"] == "contradicted"
    assert matrix["made"]["gmm"]["shares"] == {"supported": 1.0}
