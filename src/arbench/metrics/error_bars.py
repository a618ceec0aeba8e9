"""Error bars as instruments: the standard error one set of images is given, against the spread of
the values of independent draws of such sets (`arbench.error_check` draws and measures them).

Per metric and source of draws (a trained network, real images), the spread of the values across
the draws beside the root mean square of the errors the draws were given; their ratio, pooled over
the sources with at least `MIN_DRAWS` draws (weighted by their degrees of freedom), must lie within
`TOLERANCE`: a metric whose error bar is off by more does not vote (`arbench.metrics.verdict`).
With 20 draws the spread itself is known to about 16%, which the tolerance leaves room for.
"""

from __future__ import annotations

import math

import numpy as np

from arbench.core.plan import METRICS

TOLERANCE = (0.75, 1.33)  # spread across draws / the error given to one set
MIN_DRAWS = 3  # a source with fewer sets says nothing about a spread


def spread_against_error(measured: list[dict], metric: str) -> dict:
    """The spread of a metric across independent draws beside the error each draw is given."""
    values = np.array([found[metric]["value"] for found in measured])
    errors = np.array([found[metric]["se"] for found in measured])
    spread = float(values.std(ddof=1))
    given = float(np.sqrt((errors**2).mean()))
    return {
        "draws": len(values),
        "mean": float(values.mean()),
        "spread": spread,
        "given_se": given,
        "ratio": spread / given if given > 0 else math.inf,
    }


def pooled_ratio(sources: dict[str, dict]) -> float:
    """The ratio of spread to given error over every source with enough draws, each weighted by
    its degrees of freedom (its draws less one)."""
    counted = [s for s in sources.values() if s["draws"] >= MIN_DRAWS]
    freedom = sum(s["draws"] - 1 for s in counted)
    if not freedom:
        return math.nan  # no source with enough draws: the error bar is unchecked
    return math.sqrt(sum((s["draws"] - 1) * s["ratio"] ** 2 for s in counted) / freedom)


def within(ratio: float) -> bool:
    return bool(TOLERANCE[0] <= ratio <= TOLERANCE[1])


def judge(measured: dict[str, list[dict]]) -> dict[str, dict]:
    """Per metric: each source's spread and given error, their pooled ratio, and whether it lies
    within the tolerance."""
    judged = {}
    for metric in METRICS:
        sources = {
            name: spread_against_error(sets, metric)
            for name, sets in measured.items()
            if len(sets) >= MIN_DRAWS
        }
        ratio = pooled_ratio(sources)
        known = math.isfinite(ratio)
        judged[metric] = {
            "sources": sources,
            "ratio": ratio if known else None,
            "within": known and within(ratio),
        }
    return judged
