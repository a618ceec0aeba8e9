"""The report's numbers are readable: an error sets the value's digits, an error of zero says
so in words, a paired difference against a bound is marked a bound, and a pair's cell gives the
majority of its resamples."""

import numpy as np
import pytest

from arbench.report.tables import CELL, cell_text, difference_matrix, number


@pytest.mark.parametrize(
    "value, se, expected",
    [
        (0.51234, 0.0123, "0.512 ± 0.012"),
        (3569.7175, 1.1836, "3569.7 ± 1.2"),
        (83.99219, 0.2025, "83.99 ± 0.20"),
        (1.0, 0.0, "1 (no spread measurable)"),
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


def test_an_error_of_roundings_size_reads_as_no_spread_not_as_exact_knowledge():
    assert number(1.0, 1.1e-7) == "1 (no spread measurable)"
    assert number(0.25, 0.003) == "0.2500 ± 0.0030"  # two digits of the error
