"""The verdict on the study's hypothesis, per dataset, from measurements that passed their checks,
of models that had finished learning, at a set size that can tell a known-worse set from real
images.

The hypothesis: autoregressive models (NADE, MADE) give richer samples than mixture models. On
every metric that passed its known-answer checks on the dataset (`arbench.known_answers`), the
best autoregressive model is compared with the best mixture, each the best by that metric; the
metric favours a side when the difference exceeds two standard errors. A model trained several
times (`replicates`) is measured by the mean of its runs, whose standard error is the larger of
the spread across runs and the runs' own. Two gates come first: a comparison that includes a
model still improving when a cap ended its training is not decided (`arbench.convergence`), nor
one at a set size where the single Gaussian of the metric check is not clearly behind real images
(the resolving power, `arbench.known_answers`). The rule, which no single metric can decide
alone, is `RULE`.
"""

from __future__ import annotations

import math

import numpy as np

from arbench import convergence
from arbench.known_answers import RESOLVING_METRICS, RESOLVING_SES, resolving_power
from arbench.plan import model_entry, replicate_of
from arbench.sample_metrics import METRICS, better_by

MARGIN = 2.0  # standard errors a difference must exceed to favour a side
AGREEING = 2  # metrics that must favour a side, none favouring the other
RULE = (
    "On every sample-quality metric that passed its checks on the dataset, the best "
    "autoregressive model is compared with the best mixture (each the best by that metric); a "
    f"metric favours a side when their difference exceeds {MARGIN:g} standard errors. The "
    f"hypothesis is *supported* when at least {AGREEING} passing metrics favour the "
    "autoregressive model and none favours the mixture, *contradicted* in the mirror case, and "
    "*not resolved* otherwise; *not tested* when fewer than "
    f"{AGREEING} metrics passed their checks or a family is missing. No single metric decides. "
    "Two gates come before the count: "
    + convergence.RULE
    + " And a dataset is *not decided* when, at its set size, the metric check's single "
    f"Gaussian is behind real images by more than {RESOLVING_SES:g} standard errors on fewer "
    f"than {RESOLVING_METRICS} metrics that vote: it cannot resolve the question at that size."
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


def still_improving(training: dict[str, dict | None]) -> dict[str, dict | None]:
    """The training runs (of `training`: run -> how it ended) that a cap stopped while they
    were still improving faster than `arbench.convergence.TOLERANCE`."""
    return {run: record for run, record in training.items() if convergence.unfinished(record)}


def unfinished_reason(runs: dict[str, dict | None]) -> str:
    parts = []
    for run, record in runs.items():
        if record is None:
            parts.append(f"{run.upper()}'s training did not record how it ended")
        elif record["improvement_per_epoch"] is None:
            parts.append(
                f"{run.upper()} was stopped by its {record['ended_by']} at an unmeasured rate"
            )
        else:
            unit = "iteration" if record["ended_by"] == convergence.ITERATION_CAP else "epoch"
            parts.append(
                f"{run.upper()} still improving ({record['improvement_per_epoch']:.3g} nats/{unit} "
                f"when its {record['ended_by']} ended it)"
            )
    return "; ".join(parts)


def decide(
    rows: list[dict],
    unfinished: dict[str, dict | None] | None = None,
    check: dict | None = None,
) -> dict:
    """The outcome and its reason, from the evidence rows, by `RULE`: `unfinished` names the
    training runs still improving at their cap (`still_improving`); `check`, the metric check,
    gives the resolving power of the set size."""
    voting = [r for r in rows if r["passed"]]
    if not rows or "favours" not in rows[0]:
        return {"outcome": "not tested", "reason": "it needs an autoregressive model and a mixture"}
    if len(voting) < AGREEING:
        return {
            "outcome": "not tested",
            "reason": f"only {len(voting)} metric(s) passed their checks on this dataset",
        }
    if unfinished:
        return {"outcome": "not decided", "reason": unfinished_reason(unfinished)}
    if check is not None:
        power = resolving_power(check)
        strong = [m for m, z in power.items() if z > RESOLVING_SES]
        if len(strong) < RESOLVING_METRICS:
            shown = ", ".join(f"{m} {z:.1f}" for m, z in power.items())
            return {
                "outcome": "not decided",
                "reason": (
                    f"this dataset cannot resolve the question at {check['images_per_set']} "
                    f"images a set: one Gaussian trails real images by more than "
                    f"{RESOLVING_SES:g} standard errors on {len(strong)} voting metric(s) "
                    f"({shown or 'none voted'}), {RESOLVING_METRICS} are needed"
                ),
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
