"""The report's numbers are readable: an error sets the value's digits, an error of zero says
so in words, a paired difference against a bound is marked a bound, a pair's cell gives the
majority of its resamples, and the first screen says which side each part favours and defines
only the outcomes it shows."""

import re

import numpy as np
import pytest

from arbench.report.prose import (
    answer_cell,
    limits,
    outcomes_legend,
    undetectable_equality,
    why,
)
from arbench.report.tables import (
    CELL,
    NO_SPREAD_NOTE,
    cell_text,
    difference_matrix,
    number,
    quality_table,
)


@pytest.mark.parametrize(
    "value, se, expected",
    [
        (0.51234, 0.0123, "0.512 ± 0.012"),
        (3569.7175, 1.1836, "3569.7 ± 1.2"),
        (83.99219, 0.2025, "83.99 ± 0.20"),
        (1.0, 0.0, "1†"),
    ],
)
def test_a_value_carries_the_digits_its_error_allows(value, se, expected):
    assert number(value, se) == expected


def test_differences_against_a_bound_are_marked_and_every_cell_is_short():
    rng = np.random.default_rng(0)
    nlls = {
        "made": rng.normal(90, 5, 500),
        "gmm": rng.normal(560, 5, 500),
        "mob": rng.normal(131, 5, 500),
    }
    table = difference_matrix(nlls, bounds={"gmm"})
    header, _, row = table.splitlines()
    assert "gmm (bound)" in header and "mob" in header
    cells = row.strip("|").split(" | ")
    assert cells[0].strip() == "made"
    assert cells[1].startswith("≥ -4") and cells[2].startswith("-4")
    assert all(len(cell) <= CELL for cell in cells)


def test_a_pairs_cell_says_its_outcome_and_the_share_of_resamples_giving_the_majority():
    agreed = {"outcome": "supported", "agreement": {"majority": "supported", "share": 0.66}}
    assert cell_text(agreed) == "supported (66% of resamples)"
    split = {"outcome": "not resolved", "agreement": {"majority": "supported", "share": 0.66}}
    assert cell_text(split) == "not resolved (resamples: supported 66%)"


def test_an_outcome_a_gate_gave_shows_no_share_of_resamples():
    """A model still learning holds every resample alike: a share would read as confidence."""
    held = {"outcome": "not decided", "agreement": {"majority": "not decided", "share": 1.0}}
    assert cell_text(held) == "not decided"


def test_a_value_without_spread_is_marked_and_the_mark_explained_once_under_its_table():
    values = {
        "real": {"coverage": {"value": 1.0, "se": 0.0}, "recall": {"value": 0.9, "se": 0.01}},
        "made": {"coverage": {"value": 1.0, "se": 0.0}, "recall": {"value": 0.8, "se": 0.02}},
    }
    table = quality_table(values, ["recall", "coverage"])
    assert "recall ↑" in table and "coverage ↑" in table
    assert table.count("1†") == 2 and table.count(NO_SPREAD_NOTE) == 1
    assert not re.search(r"± 0(?![.\d])", table)


def test_an_error_of_roundings_size_reads_as_no_spread_not_as_exact_knowledge():
    assert number(1.0, 1.1e-7) == "1†"
    assert number(0.25, 0.003) == "0.2500 ± 0.0030"  # two digits of the error


def test_the_first_screen_names_the_majority_of_resamples_where_it_is_not_the_outcome():
    """66% of resamples saying 'supported' must not read as agreeing with 'not resolved'."""
    split = {"outcome": "not resolved", "agreement": {"majority": "supported", "share": 0.66}}
    assert answer_cell(split) == "**not resolved** (resamples: supported 66%)"
    held = {"outcome": "not decided", "agreement": {"majority": "not decided", "share": 1.0}}
    assert answer_cell(held) == "**not decided**"


def comparison(metric, ours, theirs, finding, detectable=0.01, margin=0.02):
    return {
        "primary": {
            "metric": metric,
            "ours": ours,
            "theirs": theirs,
            "finding": finding,
            "detectable": detectable,
            "margin": margin,
        }
    }


def verdict(outcome, parts):
    pair = {"pair": ["made", "pca_gmm"], "outcome": outcome, "parts": parts, "unfinished": []}
    cell = {"outcome": outcome, "unfinished": []}
    return {
        "primary_pair": pair,
        "family": {"outcome": outcome},
        "matrix": {"made": {"pca_gmm": cell}},
    }


def test_the_first_screen_says_each_parts_values_their_direction_and_the_side_favoured():
    found = verdict(
        "not resolved",
        {
            "diversity": comparison("ndb_jsd", 0.0332, 0.0208, "not resolved"),
            "fidelity": comparison("c2st_accuracy", 0.687, 0.9995, "autoregressive"),
        },
    )
    diversity, fidelity = why(found)
    assert diversity == "NDB JSD ↓: made 0.0332, pca_gmm 0.0208 → neither side"
    assert fidelity == "classifier accuracy ↓: made 0.687, pca_gmm 1 → made"
    assert len(diversity) <= CELL and len(fidelity) <= CELL


def test_the_legend_defines_the_outcomes_shown_and_no_other():
    legend = outcomes_legend({"mnist": verdict("supported", {})})
    assert "**Supported**" in legend
    assert "Not decided" not in legend and "Not tested" not in legend
    assert "**Equal within the margin**" in outcomes_legend(
        {"atari": verdict("equal within the margin", {})}
    )


def test_a_comparison_too_coarse_to_show_equality_says_so():
    coarse = {"diversity": comparison("ndb_jsd", 0.03, 0.02, "not resolved", 0.019, 0.0086)}
    assert "diversity (0.019 against a margin of 0.0086)" in undetectable_equality(coarse)
    fine = {"diversity": comparison("ndb_jsd", 0.03, 0.02, "not resolved", 0.004, 0.0086)}
    assert undetectable_equality(fine) == ""


def test_the_answer_figure_is_drawn_where_no_dataset_has_a_pair(tmp_path):
    """A run of mixtures only (a config of the required keys) has no pair and no outcome."""
    from arbench.report.figures import pair_matrices

    only_mixtures = {"mnist": {"matrix": {}, "primary_pair": None, "family": {"outcome": ""}}}
    written = pair_matrices(only_mixtures, tmp_path / "answer")
    assert all(path.stat().st_size > 0 for path in written)


def test_the_first_screen_says_its_limits():
    weak = {"primary": "c2st_accuracy", "separation": {"standard_errors": 3.2}}
    strong = {"primary": "ndb_jsd", "separation": {"standard_errors": 10.6}}
    coarse = comparison("ndb_jsd", 0.03, 0.02, "not resolved", 0.019, 0.0086)
    anime = verdict("not resolved", {"diversity": coarse, "fidelity": comparison("ndb", 1, 2, "")})
    anime |= {"declared": {"fidelity": weak, "diversity": strong}, "models": {"made": {}}}
    mnist = verdict("supported", {"diversity": comparison("ndb_jsd", 0.03, 0.02, "")})
    mnist |= {
        "declared": {"fidelity": strong, "diversity": strong},
        "models": {"made": {}, "mob": {}},
    }
    said = limits({"anime": anime, "mnist": mnist})
    assert "anime's fidelity metric (classifier accuracy)" in said and "3.2 SE" in said
    assert "could not have read equal in anime (diversity)." not in said  # more follows
    assert "equal in anime (diversity)" in said and "mnist (" not in said.split("not trained")[0]
    assert said.endswith("not trained: mob (anime).")
