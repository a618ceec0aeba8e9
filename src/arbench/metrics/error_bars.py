"""Error bars as instruments: the standard error one set of images is given (the delete-d jackknife
over the set, binomial for the classifier), against the spread of the values of independent draws
of such sets (`arbench.error_check` draws and measures them). A calibration, not a gate.

Per metric and source of draws (trained models of both families, real images), the spread of the
values across the draws beside the root mean square of the errors the draws were given; their
ratio, pooled over the sources (weighted by their degrees of freedom), with its 95% confidence
interval from the chi-square distribution of a variance. What the check does with it:

- an error found too small (ratio above 1) is scaled up by the upper confidence limit of the
  ratio (`scale`): the conservative side of what the draws measured;
- an error found too large is kept: it makes a test conservative, never wrong;
- a metric at a boundary (every subset of a set gives the same value, so its error is 0, while
  the draws do vary: coverage at 1, say) is given the spread the draws measured (`floor`).

No metric loses its use for its error bar. Real draws are subsets of the training and valid
images; where those hold fewer than `draws` disjoint sets, the sets are drawn at random (each
without replacement) and overlap, and their spread is divided by sqrt(1 - n/N), the finite
population correction: what fresh sets of n would spread by.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from arbench.core.plan import METRICS

LEVEL = 0.95  # of the ratio's confidence interval
GIVEN_DRAWS = 5  # draws of a source whose own error is computed (30 estimates each)
MIN_DRAWS = 3  # a source with fewer sets says nothing about a spread


def spread_against_error(measured: list[dict], metric: str, kept_share: float = 0.0) -> dict:
    """The spread of a metric across independent draws (corrected for draws that share images:
    `kept_share`, n/N) beside the root mean square of the errors the draws were given."""
    values = np.array([found[metric]["value"] for found in measured])
    errors = np.array(
        [found[metric]["se"] for found in measured if found[metric]["se"] is not None]
    )
    spread = float(values.std(ddof=1) / math.sqrt(1 - kept_share))
    given = float(np.sqrt((errors**2).mean())) if len(errors) else math.nan
    # at a boundary (no error given) a spread is infinitely understated; none says nothing
    ratio = spread / given if given > 0 else math.inf if spread > 0 else None
    return {
        "draws": len(values),
        "mean": float(values.mean()),
        "spread": spread,
        "given_se": given,
        "ratio": ratio,
    }


def interval(ratio: float, freedom: int, level: float = LEVEL) -> tuple[float, float]:
    """The confidence interval of a ratio of spreads whose square is a chi-square variance
    ratio with `freedom` degrees of freedom."""
    tail = (1 - level) / 2
    return (
        ratio * math.sqrt(freedom / stats.chi2.ppf(1 - tail, freedom)),
        ratio * math.sqrt(freedom / stats.chi2.ppf(tail, freedom)),
    )


def calibration(sources: dict[str, dict]) -> dict:
    """One metric's calibration from its sources: the pooled ratio of spread to given error over
    the sources with a finite ratio, its interval, and what the check does with the error."""
    counted = [
        s
        for s in sources.values()
        if s["draws"] >= MIN_DRAWS and s["ratio"] is not None and math.isfinite(s["ratio"])
    ]
    freedom = sum(s["draws"] - 1 for s in counted)
    boundary = [name for name, s in sources.items() if s["given_se"] == 0 and s["spread"] > 0]
    floor = max((sources[name]["spread"] for name in boundary), default=0.0)
    if not freedom:
        return {
            "ratio": None,
            "low": None,
            "high": None,
            "freedom": 0,
            "scale": 1.0,
            "floor": floor,
            "at_boundary": boundary,
            "reading": "unchecked",
        }
    ratio = math.sqrt(sum((s["draws"] - 1) * s["ratio"] ** 2 for s in counted) / freedom)
    low, high = interval(ratio, freedom)
    if ratio > 1:
        scale, reading = high, f"understated: scaled up by {high:.2f}"
    else:
        scale, reading = 1.0, "kept" + (" (overstated: conservative)" if high < 1 else "")
    if boundary:
        reading += f"; at a boundary in {', '.join(boundary)}: the draws' spread is its floor"
    return {
        "ratio": ratio,
        "low": low,
        "high": high,
        "freedom": freedom,
        "scale": scale,
        "floor": floor,
        "at_boundary": boundary,
        "reading": reading,
    }


def judge(measured: dict[str, list[dict]], kept_shares: dict[str, float]) -> dict[str, dict]:
    """Per metric: each source's spread and given error, and the calibration they give."""
    judged = {}
    for metric in METRICS:
        sources = {
            name: spread_against_error(sets, metric, kept_shares.get(name, 0.0))
            for name, sets in measured.items()
            if len(sets) >= MIN_DRAWS and all(metric in found for found in sets)
        }
        if sources:
            judged[metric] = {"sources": sources, **calibration(sources)}
    return judged


def calibrated(se: float, found: dict | None) -> float:
    """A single set's standard error as the check calibrated it: scaled up where the draws found
    it too small, at least the draws' spread where it sits at a boundary."""
    if found is None:
        return se
    return max(se * found["scale"], found["floor"])
