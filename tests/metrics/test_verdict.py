"""The verdict follows the evidence by its stated rule: each part's primary metric and margin are
declared from the metric check alone, each outcome comes from measurements built to give it, a
difference inside its margin reads equal, nothing beats real images, the rule asks the same of
both families, models are measured over their draws and seeds, and how often an outcome comes out
over resamples is reported beside it."""

import math

import numpy as np
import pytest
from scipy import stats

from arbench.core.plan import METRICS, part_of
from arbench.metrics import known_answers as known
from arbench.metrics.verdict import (
    AUTOREGRESSIVE,
    CONTRADICTED,
    EQUAL,
    MIXTURE,
    MODEL_DEPENDENT,
    NOT_DECIDED,
    NOT_RESOLVED,
    NOT_TESTED,
    SUPPORTED,
    answer,
    compare,
    declared,
    family_answer,
    outcome,
    pooled,
    run_values,
)

CHEAP = [m for m in METRICS if m != "c2st_accuracy"]

# Every known-answer set by how far it lies from real images, in units of a metric's error: a
# metric measuring these passes every check of its part.
DISTANCES = {
    known.REAL: 0,
    known.GAUSSIAN: 10,
    **dict(zip(known.NOISY, (2, 4, 8), strict=True)),
    known.DROPPED: 5,
    known.MATCHED: 0,
    known.PROTOTYPE: 10,
    known.COPIES: 0,
    known.GAUSSIAN_OUTLIERS: 1,
    known.NOISE_OUTLIERS: 1,
    known.NOISY_PROTOTYPES: 10,
}


def signed(metric, distance):
    """A value `distance` worse than real's (0) by `metric`."""
    return distance if METRICS[metric][0] == "lower" else -distance


def check_sets(se=None, stretch=None):
    """A metric check whose every metric passes its part's checks, each with error `se[m]`
    (default 1) and its sets `stretch[m]` times as far from real (default 1)."""
    se, stretch = se or {}, stretch or {}
    sets = {}
    for name, distance in DISTANCES.items():
        sets[name] = {
            m: {"value": signed(m, distance * stretch.get(m, 1.0)), "se": se.get(m, 1.0)}
            for m in METRICS
        }
        sets[name][known.SECOND_SEED] = dict(sets[name]["c2st_accuracy"])
    return {"sets": sets}


def calibration(scale=None):
    scale = scale or {}
    return {
        "metrics": {m: {"scale": scale.get(m, 1.0), "floor": 0.0, "freedom": 57} for m in METRICS}
    }


def quality(values, spread=0.01, draws=5, seed=0):
    """A training run's quality file: every metric's draws around `values[m]` (default: the
    real images' own value, 0) with the given spread; the classifier on one draw."""
    rng = np.random.default_rng(seed)
    centre = {m: values.get(m, 0.0) for m in METRICS}
    return {
        "model": {
            "draws": [{m: centre[m] + spread * rng.normal() for m in CHEAP} for _ in range(draws)],
            "reference": {m: [centre[m]] * 30 for m in CHEAP},
            "c2st_accuracy": [{"value": centre["c2st_accuracy"], "se": spread}],
        }
    }


def test_the_primary_metric_is_the_one_separating_its_parts_defining_set_by_most_errors():
    found = declared(check_sets(se={"ndb": 0.1, "precision": 0.5}), calibration())
    assert found["parts"]["diversity"]["primary"] == "ndb"
    assert found["parts"]["fidelity"]["primary"] == "precision"
    assert "recall" in found["parts"]["diversity"]["support"]
    # its margin: a quarter of the separation, in the metric's units
    assert found["parts"]["diversity"]["margin"] == pytest.approx(0.25 * 5)


def test_a_metric_that_fails_a_check_is_never_primary_and_a_calibration_can_move_the_choice():
    sets = check_sets(se={"ndb": 0.1, "coverage": 0.2})
    sets["sets"][known.NOISY[0]]["ndb"]["value"] = -3  # 5% noise looks richer than real
    found = declared(sets, calibration())
    assert found["parts"]["diversity"]["primary"] == "coverage"
    assert "ndb" not in found["parts"]["diversity"]["support"]
    # coverage's error found five times too small: it no longer separates best
    again = declared(check_sets(se={"ndb": 0.3, "coverage": 0.2}), calibration({"coverage": 5}))
    assert again["parts"]["diversity"]["primary"] == "ndb"


def test_a_metric_with_no_measured_error_is_primary_only_where_no_separation_was_measured():
    # ndb's error of 0 would make its gap infinitely many errors: no evidence it separates best
    found = declared(check_sets(se={"ndb": 0.0, "coverage": 0.5}), calibration())
    assert found["judged"]["ndb"]["separation"]["standard_errors"] == math.inf
    assert known.in_standard_errors(math.inf) == "no spread measured"
    assert found["parts"]["diversity"]["primary"] == "coverage"
    assert "ndb" in found["parts"]["diversity"]["support"]
    alone = {m: v for m, v in found["judged"].items() if m in ("ndb", "precision")}
    assert known.primary(alone, "diversity") == "ndb"
    # no gap and no error: it separates nothing, not infinitely much
    flat = check_sets(se={"ndb": 0.0})
    flat["sets"][known.DROPPED]["ndb"] = dict(flat["sets"][known.REAL]["ndb"])
    assert known.separation("ndb", flat["sets"])["standard_errors"] == 0.0


def test_no_metric_passing_diversitys_checks_leaves_the_question_not_tested():
    sets = check_sets()
    for metric in METRICS:
        if part_of(metric) == "diversity":
            sets["sets"][known.DROPPED][metric] = dict(sets["sets"][known.REAL][metric])
    found = declared(sets, calibration())
    assert found["parts"]["diversity"]["primary"] is None
    runs = {"made": quality({}), "pca_gmm": quality({})}
    result = answer(runs, sets, calibration(), set(), ("made", "pca_gmm"), resamples=5)
    assert result["primary_pair"]["outcome"] == NOT_TESTED


def value(x, se, df=10, reference=None):
    return {"value": x, "se": se, "df": df, "reference": reference}


REAL = value(0.0, 0.0)


def test_a_comparison_favours_a_side_reads_equal_inside_its_margin_or_is_not_resolved():
    clear = compare("ndb", value(0.1, 0.01), value(0.5, 0.01), REAL, margin=0.05)
    assert clear["finding"] == AUTOREGRESSIVE and clear["better_by"] == pytest.approx(0.4)
    mirrored = compare("ndb", value(0.5, 0.01), value(0.1, 0.01), REAL, margin=0.05)
    assert mirrored["finding"] == MIXTURE
    same = compare("ndb", value(0.100, 0.002), value(0.101, 0.002), REAL, margin=0.05)
    assert same["finding"] == EQUAL
    # a difference as small, measured too loosely to put inside the margin
    loose = compare("ndb", value(0.100, 0.05), value(0.101, 0.05), REAL, margin=0.05)
    assert loose["finding"] == NOT_RESOLVED
    t = stats.t.ppf(0.975, loose["df"]) + stats.t.ppf(0.8, loose["df"])
    assert loose["detectable"] == pytest.approx(t * loose["se"])


def test_a_difference_is_read_with_students_t_at_the_welch_satterthwaite_freedom():
    found = compare("ndb", value(0.0, 1.0, df=2), value(0.0, 1.0, df=2), REAL, margin=None)
    assert found["df"] == pytest.approx(4.0)
    assert found["interval"][1] == pytest.approx(stats.t.ppf(0.975, 4) * math.sqrt(2))


def test_the_shared_test_images_add_their_paired_variation_to_a_difference():
    moving = list(np.random.default_rng(0).normal(size=30))
    together = compare(
        "ndb", value(0, 0.1, reference=moving), value(0, 0.1, reference=moving), REAL, None
    )
    apart = compare(
        "ndb",
        value(0, 0.1, reference=moving),
        value(0, 0.1, reference=[-x for x in moving]),
        REAL,
        None,
    )
    assert together["se"] == pytest.approx(math.sqrt(2) * 0.1)  # the same images move both alike
    assert apart["se"] > 5 * together["se"]


def test_a_value_better_than_real_counts_as_reals_own():
    real = value(0.9, 0.0)
    piled = compare("precision", value(0.7, 0.01), value(1.0, 0.01), real, margin=0.01)
    assert piled["theirs"] == 0.9 and piled["theirs_beyond_real"] == 1.0
    assert piled["better_by"] == pytest.approx(-0.2)


def finding(side):
    return {"finding": side}


@pytest.mark.parametrize(
    "diversity, fidelity, expected",
    [
        (AUTOREGRESSIVE, None, SUPPORTED),
        (AUTOREGRESSIVE, EQUAL, SUPPORTED),
        (AUTOREGRESSIVE, MIXTURE, NOT_RESOLVED),
        (MIXTURE, None, CONTRADICTED),
        (MIXTURE, AUTOREGRESSIVE, NOT_RESOLVED),
        (EQUAL, AUTOREGRESSIVE, EQUAL),
        (NOT_RESOLVED, AUTOREGRESSIVE, NOT_RESOLVED),
        (None, AUTOREGRESSIVE, NOT_TESTED),
    ],
)
def test_the_outcome_follows_the_parts_by_the_rule_symmetric_in_the_families(
    diversity, fidelity, expected
):
    assert outcome({"diversity": finding(diversity), "fidelity": finding(fidelity)}) == expected


def test_a_runs_value_is_the_mean_of_its_draws_its_error_their_spread():
    run = quality({"recall": 0.5}, spread=0.02)["model"]
    found = run_values(run, calibration())
    draws = [d["recall"] for d in run["draws"]]
    assert found["recall"]["value"] == pytest.approx(np.mean(draws))
    assert found["recall"]["se"] == pytest.approx(np.std(draws, ddof=1) / math.sqrt(5))
    assert found["recall"]["df"] == 4
    # the classifier, on one draw: its binomial error as calibrated
    scaled = run_values(run, calibration({"c2st_accuracy": 3.0}))
    assert scaled["c2st_accuracy"]["se"] == pytest.approx(0.06)


def test_a_models_error_is_the_larger_of_the_spread_between_seeds_and_within_them():
    runs = [value(v, 0.001, df=4) for v in (0.4, 0.5, 0.6)]
    found = pooled(runs)
    assert found["value"] == pytest.approx(0.5)
    assert found["se"] == pytest.approx(0.1 / math.sqrt(3)) and found["df"] == 2
    steady = pooled([value(0.5, 0.1, df=4) for _ in range(3)])
    assert steady["se"] == pytest.approx(0.1 / math.sqrt(3)) and steady["df"] == 12


def runs_of(model, values, seeds=3, spread=0.01):
    suffix = ["", ".r1", ".r2"]
    return {model + suffix[s]: quality(values, spread, seed=s) for s in range(seeds)}


def study(ar_ndb, mixture_ndb, **more):
    """The metric check makes NDB diversity's primary and precision fidelity's; every model is
    at real images' own values but for NDB."""
    check = check_sets(
        se={"ndb": 0.001, "precision": 0.001}, stretch={"ndb": 0.01, "precision": 0.01}
    )
    runs = {
        **runs_of("made", {"ndb": ar_ndb}),
        **runs_of("pca_gmm", {"ndb": mixture_ndb}),
        **{k: v for model, ndb in more.items() for k, v in runs_of(model, {"ndb": ndb}).items()},
    }
    return runs, check


def test_the_primary_pair_answers_supported_contradicted_or_equal_as_its_numbers_say():
    for ar, mixture, expected in (
        (0.05, 0.3, SUPPORTED),
        (0.3, 0.05, CONTRADICTED),
        (0.05, 0.051, EQUAL),
    ):
        runs, check = study(ar, mixture)
        found = answer(runs, check, calibration(), set(), ("made", "pca_gmm"), resamples=20)
        pair = found["primary_pair"]
        assert pair["outcome"] == expected, (ar, mixture)
        assert pair["parts"]["diversity"]["primary"]["metric"] == "ndb"
        assert pair["agreement"]["majority"] == expected
        assert found["declared"]["diversity"]["margin"] == pytest.approx(0.25 * 0.05)


def test_the_family_answer_is_model_dependent_when_its_pairs_differ_and_names_them():
    runs, check = study(0.05, 0.3, nade=0.6, gmm=0.05)
    found = answer(runs, check, calibration(), set(), ("made", "pca_gmm"), resamples=5)
    family = found["family"]
    assert family["outcome"] == MODEL_DEPENDENT
    assert ["made", "gmm", EQUAL] in family["differing"]
    assert found["matrix"]["nade"]["pca_gmm"]["outcome"] == CONTRADICTED
    agreed = family_answer({"a": {"b": {"outcome": SUPPORTED}, "c": {"outcome": SUPPORTED}}})
    assert agreed["outcome"] == SUPPORTED and agreed["differing"] == []


def test_a_pair_with_a_model_still_learning_is_not_decided():
    runs, check = study(0.05, 0.3)
    found = answer(runs, check, calibration(), {"made.r1"}, ("made", "pca_gmm"), resamples=5)
    assert found["primary_pair"]["outcome"] == NOT_DECIDED
    assert found["primary_pair"]["unfinished"] == ["made.r1"]


def test_a_supporting_metric_that_disagrees_with_the_primary_is_said():
    runs, check = study(0.05, 0.3)
    for name in [r for r in runs if r.startswith("made")]:
        for draw in runs[name]["model"]["draws"]:
            draw["recall"] = -0.5  # the mixture reaches further by recall
    found = answer(runs, check, calibration(), set(), ("made", "pca_gmm"), resamples=5)
    assert found["primary_pair"]["outcome"] == SUPPORTED
    assert "recall" in found["primary_pair"]["parts"]["diversity"]["disagree"]
