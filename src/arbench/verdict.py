"""The verdict on the study's hypothesis, per dataset, from measurements that passed their checks,
of models that had finished learning, at a set size that can tell a known-worse set from real
images.

The hypothesis: autoregressive models give richer samples than mixture models. "Richer" has two
parts: the samples reach everywhere real images do (**diversity**: recall, coverage) without
leaving where real images are (**fidelity**: Fréchet and kernel distances, precision, density);
the classifier two-sample test sees both at once (the **omnibus** test). Each family is
represented by one model, chosen on one draw of samples (`selection`): the model best by the most
metrics that passed their known-answer checks on the dataset (`arbench.known_answers`); the two
representatives are then compared, metric by metric, on another, independent draw (`model`), so
that a family with more members gains nothing from the noise of the draw it is judged on. Every
value is read against the real set's own (`arbench.sample_metrics.no_better_than_real`): real
images are the optimum, and a set more "precise" or "dense" than real has piled its samples on a
few places. A model trained several times (`replicates`) is measured by the mean of its runs,
whose standard error is the larger of the spread across runs and the runs' own. The rule is
`RULE`.
"""

from __future__ import annotations

import math

import numpy as np

from arbench import convergence
from arbench.known_answers import REAL, RESOLVING_METRICS, RESOLVING_SES, sound, trails_by
from arbench.plan import DIVERSITY, FIDELITY, METRICS, OMNIBUS, PARTS, model_entry, replicate_of
from arbench.sample_metrics import better_by, no_better_than_real

MARGIN = 2.0  # standard errors a difference must exceed to favour a side
AGREEING = 2  # metrics that must pass their checks for a verdict
AUTOREGRESSIVE, MIXTURE = "autoregressive", "mixture"
RULE = (
    "Only sample-quality metrics that passed their checks on the dataset vote (among the checks: "
    f"each puts one Gaussian more than {RESOLVING_SES:g} standard errors behind real images by "
    "itself). Each family is represented by one model: the one best by the most voting metrics "
    "on a draw of samples kept for the choice (the classifier test takes no part in it); the two "
    "representatives are compared on another, independent draw, the one the tables show. "
    "Every value is read against the real images' own: a value better than real counts as "
    "real's, no more. A metric favours a side when the difference exceeds "
    f"{MARGIN:g} standard errors. A part of the hypothesis (fidelity: Fréchet and kernel "
    "distances, precision, density; diversity: recall, coverage; the omnibus classifier test) "
    "favours a side when more of its voting metrics favour that side than the other. The "
    "hypothesis is *supported* when diversity favours the autoregressive side and neither "
    "fidelity nor the omnibus test favours the mixture (richer: reaching further without "
    "leaving where real images are); *contradicted* when no part favours the autoregressive "
    "side and at least one favours the mixture; *not resolved* otherwise (for example more "
    "diverse but less faithful). It is *not tested* when a family is missing, fewer than "
    f"{AGREEING} metrics or no diversity metric passed their checks. Two gates come before: "
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
    """Training runs' measurements (nade, nade.r1, ...) pooled per model, metric by metric (of
    the metrics every run has)."""
    runs: dict[str, list[str]] = {}
    for name in measured:
        runs.setdefault(replicate_of(name)[0], []).append(name)
    return {
        model: {
            metric: pooled([measured[n][metric] for n in names])
            for metric in METRICS
            if all(metric in measured[n] for n in names)
        }
        for model, names in runs.items()
    }


def read_against_real(measured: dict[str, dict], check: dict) -> dict[str, dict]:
    """Every model's measurements as the verdict reads them: no better than the real set's."""
    real = check["sets"][REAL]
    return {
        model: {
            metric: no_better_than_real(metric, value, real[metric])
            for metric, value in found.items()
        }
        for model, found in measured.items()
    }


def ranked(metric: str, measured: dict[str, dict], models: list[str]) -> list[str]:
    """`models` from best to worst by `metric`."""
    sign = 1 if METRICS[metric][0] == "lower" else -1
    return sorted(models, key=lambda m: sign * measured[m][metric]["value"])


def representative(measured: dict[str, dict], models: list[str], voting: list[str]) -> str:
    """The model of `models` best by the most of the `voting` metrics it was measured by (a metric
    on which the best ties with another gives no one a win), ties broken by the mean rank."""
    metrics = [m for m in voting if all(m in measured[model] for model in models)]
    wins = dict.fromkeys(models, 0)
    ranks = dict.fromkeys(models, 0.0)
    for metric in metrics:
        order = ranked(metric, measured, models)
        for position, model in enumerate(order):
            ranks[model] += position / len(metrics)
        values = [measured[model][metric]["value"] for model in order]
        if len(order) == 1 or values[0] != values[1]:
            wins[order[0]] += 1
    return max(models, key=lambda m: (wins[m], -ranks[m]))


def evidence(judged: dict[str, dict], selection: dict[str, dict], check: dict) -> list[dict]:
    """One row per metric: did it pass its checks, which part it measures, the two families'
    representatives (chosen on the `selection` draw), their values on the `judged` draw (read
    against real) and which side that favours. `judged` and `selection`: training run -> its
    measurements on that draw (runs of one model are pooled, so the comparison weighs the spread
    across seeds too)."""
    judged = read_against_real(by_model(judged), check)
    selection = read_against_real(by_model(selection), check)
    ours = [m for m in judged if family(m) == AUTOREGRESSIVE]
    theirs = [m for m in judged if family(m) == MIXTURE]
    voting = [m for m in METRICS if check["metrics"][m]["passed"]]
    if ours and theirs:
        a = representative(selection, ours, voting)
        b = representative(selection, theirs, voting)
    rows = []
    for metric in METRICS:
        row = {
            "metric": metric,
            "part": METRICS[metric][1],
            "passed": check["metrics"][metric]["passed"],
        }
        if ours and theirs:
            gap, se = better_by(metric, judged[a][metric], judged[b][metric])
            favours = (
                AUTOREGRESSIVE if gap > MARGIN * se else MIXTURE if gap < -MARGIN * se else None
            )
            row.update(
                autoregressive=a,
                autoregressive_value=judged[a][metric],
                mixture=b,
                mixture_value=judged[b][metric],
                better_by=gap,
                se=se,
                favours=favours,
            )
        rows.append(row)
    return rows


def findings(rows: list[dict]) -> dict[str, dict]:
    """Per part of the hypothesis: its voting metrics, those favouring each side, and the side
    the part favours (None: neither, or no metric of the part voted)."""
    found = {}
    for part in PARTS:
        voting = [r for r in rows if r["passed"] and r["part"] == part]
        ours = [r["metric"] for r in voting if r.get("favours") == AUTOREGRESSIVE]
        theirs = [r["metric"] for r in voting if r.get("favours") == MIXTURE]
        side = None
        if len(ours) != len(theirs):
            side = AUTOREGRESSIVE if len(ours) > len(theirs) else MIXTURE
        found[part] = {
            "voting": [r["metric"] for r in voting],
            AUTOREGRESSIVE: ours,
            MIXTURE: theirs,
            "favours": side,
        }
    return found


def describe_part(part: str, found: dict) -> str:
    if not found["voting"]:
        return f"{part}: no metric voted"
    side = found["favours"]
    lead = f"{part} favours the {side} side" if side else f"{part} favours neither side"
    return (
        f"{lead} ({len(found[AUTOREGRESSIVE])} of {len(found['voting'])} voting metrics for the "
        f"autoregressive side: {', '.join(found[AUTOREGRESSIVE]) or 'none'}; "
        f"{len(found[MIXTURE])} for the mixture: {', '.join(found[MIXTURE]) or 'none'})"
    )


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
    """The outcome, its reason and the finding of each part, from the evidence rows, by `RULE`:
    `unfinished` names the training runs still improving at their cap (`still_improving`);
    `check`, the metric check, gives the resolving power of the set size."""
    voting = [r for r in rows if r["passed"]]
    parts = findings(rows)
    if not rows or "favours" not in rows[0]:
        return {
            "outcome": "not tested",
            "reason": "it needs an autoregressive model and a mixture",
            "parts": parts,
        }
    if unfinished:
        return {"outcome": "not decided", "reason": unfinished_reason(unfinished), "parts": parts}
    if check is not None:
        ranked_right = [m for m in check["metrics"] if sound(check, m)]
        if len(ranked_right) >= AGREEING and len(voting) < RESOLVING_METRICS:
            shown = ", ".join(f"{m} {trails_by(m, check['sets']):.1f}" for m in ranked_right)
            return {
                "outcome": "not decided",
                "reason": (
                    f"this dataset cannot resolve the question at {check['images_per_set']} "
                    f"images a set: of the metrics that rank the known sets right, one Gaussian "
                    f"trails real images by more than {RESOLVING_SES:g} standard errors on "
                    f"{len(voting)} ({shown}); {RESOLVING_METRICS} are needed"
                ),
                "parts": parts,
            }
    if len(voting) < AGREEING or not parts[DIVERSITY]["voting"]:
        return {
            "outcome": "not tested",
            "reason": f"{len(voting)} metric(s) passed their checks on this dataset, "
            f"{len(parts[DIVERSITY]['voting'])} of them of diversity; at least {AGREEING}, and "
            "one of diversity, are needed",
            "parts": parts,
        }
    sides = {part: parts[part]["favours"] for part in PARTS}
    reason = "; ".join(describe_part(part, parts[part]) for part in (DIVERSITY, FIDELITY, OMNIBUS))
    if sides[DIVERSITY] == AUTOREGRESSIVE and MIXTURE not in (sides[FIDELITY], sides[OMNIBUS]):
        outcome = "supported"
    elif AUTOREGRESSIVE not in sides.values() and MIXTURE in sides.values():
        outcome = "contradicted"
    else:
        outcome = "not resolved"
    return {"outcome": outcome, "reason": reason, "parts": parts}
