"""The verdict on the study's hypothesis, per dataset, from measurements that passed their checks.

The hypothesis: autoregressive models (NADE, MADE) give richer samples than mixture models. On
every metric that passed its known-answer checks on the dataset (`arbench.quality`), the best
autoregressive model is compared with the best mixture, each the best by that metric; the metric
favours a side when the difference exceeds two standard errors. A model trained several times
(`replicates`) is measured by the mean of its runs, whose standard error is the larger of the
spread across runs and the runs' own. The rule, which no single metric can decide alone, is
`RULE`.
"""

from __future__ import annotations

import math

import numpy as np

from arbench.plan import model_entry, replicate_of
from arbench.quality import METRICS, better_by

MARGIN = 2.0  # standard errors a difference must exceed to favour a side
AGREEING = 2  # metrics that must favour a side, none favouring the other
RULE = (
    "On every sample-quality metric that passed its checks on the dataset, the best "
    "autoregressive model is compared with the best mixture (each the best by that metric); a "
    f"metric favours a side when their difference exceeds {MARGIN:g} standard errors. The "
    f"hypothesis is *supported* when at least {AGREEING} passing metrics favour the "
    "autoregressive model and none favours the mixture, *contradicted* in the mirror case, and "
    "*not resolved* otherwise; *not tested* when fewer than "
    f"{AGREEING} metrics passed their checks or a family is missing. No single metric decides."
)


def family(name: str) -> str:
    return model_entry(name).family


def pooled(runs: list[dict]) -> dict:
    """One model's measurement over its training runs (seeds): their mean, with the larger of
    the spread across runs (SD / sqrt(runs)) and the runs' own standard error of that mean."""
    values = np.array([run["value"] for run in runs])
    within = math.sqrt(sum(run["se"] ** 2 for run in runs)) / len(runs)
    between = values.std(ddof=1) / math.sqrt(len(runs)) if len(runs) > 1 else 0.0
    return {
        "value": float(values.mean()),
        "se": max(within, float(between)),
        "runs": len(runs),
        "spread_between_runs": float(values.std(ddof=1)) if len(runs) > 1 else None,
    }


def by_model(measured: dict[str, dict]) -> dict[str, dict]:
    """Training runs' measurements (nade, nade.r1, ...) pooled per model."""
    runs: dict[str, list[str]] = {}
    for name in measured:
        runs.setdefault(replicate_of(name)[0], []).append(name)
    return {
        model: {metric: pooled([measured[n][metric] for n in names]) for metric in METRICS}
        for model, names in runs.items()
    }


def best(metric: str, measured: dict[str, dict], models: list[str]) -> str:
    sign = 1 if METRICS[metric][0] == "lower" else -1
    return min(models, key=lambda m: sign * measured[m][metric]["value"])


def evidence(measured: dict[str, dict], checks: dict) -> list[dict]:
    """One row per metric: did it pass its checks, which models it compares, and what it finds.
    `measured`: training run -> its quality measurements (runs of one model are pooled, so the
    comparison weighs the spread across training seeds too); `checks`: the metric check."""
    measured = by_model(measured)
    ours = [m for m in measured if family(m) == "autoregressive"]
    theirs = [m for m in measured if family(m) == "mixture"]
    rows = []
    for metric in METRICS:
        row = {"metric": metric, "passed": checks["metrics"][metric]["passed"]}
        if ours and theirs:
            a, b = best(metric, measured, ours), best(metric, measured, theirs)
            gap, se = better_by(metric, measured[a][metric], measured[b][metric])
            favours = (
                "autoregressive" if gap > MARGIN * se else "mixture" if gap < -MARGIN * se else None
            )
            row.update(
                autoregressive=a,
                autoregressive_value=measured[a][metric],
                mixture=b,
                mixture_value=measured[b][metric],
                better_by=gap,
                se=se,
                favours=favours,
            )
        rows.append(row)
    return rows


def decide(rows: list[dict]) -> dict:
    """The outcome and its reason, from the evidence rows, by `RULE`."""
    voting = [r for r in rows if r["passed"]]
    if not rows or "favours" not in rows[0]:
        return {"outcome": "not tested", "reason": "it needs an autoregressive model and a mixture"}
    if len(voting) < AGREEING:
        return {
            "outcome": "not tested",
            "reason": f"only {len(voting)} metric(s) passed their checks on this dataset",
        }
    ours = [r["metric"] for r in voting if r["favours"] == "autoregressive"]
    theirs = [r["metric"] for r in voting if r["favours"] == "mixture"]
    counts = (
        f"of {len(voting)} metrics that passed their checks, {len(ours)} favour the "
        f"autoregressive model ({', '.join(ours) or 'none'}) and {len(theirs)} the mixture "
        f"({', '.join(theirs) or 'none'})"
    )
    if len(ours) >= AGREEING and not theirs:
        return {"outcome": "supported", "reason": counts}
    if len(theirs) >= AGREEING and not ours:
        return {"outcome": "contradicted", "reason": counts}
    return {"outcome": "not resolved", "reason": counts}
