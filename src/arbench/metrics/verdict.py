"""The verdict on the study's hypothesis, per dataset, from measurements that passed their checks,
with error bars that were checked, of models that had finished learning, at a set size that can
tell a known-worse set from real images; and how often it comes out when everything it rests on
is drawn again.

The hypothesis: autoregressive models give richer samples than mixture models. "Richer" has two
parts: the samples reach everywhere real images do (**diversity**: recall, coverage) without
leaving where real images are (**fidelity**: Fréchet and kernel distances, precision, density);
the classifier two-sample test sees both and votes in each part whose checks it passes. Each
family is represented by one model, chosen on one draw of samples (`selection`): the model best by
the most voting metrics there; the two representatives are then compared, metric by metric, on
another, independent draw (`model`), so that a family with more members gains nothing from the
noise of the draw it is judged on. Every value is read against the real set's own
(`arbench.metrics.measures.no_better_than_real`). A model trained several times (`replicates`) is
measured by the mean of its runs, whose standard error is the larger of the spread across runs and
the runs' own. The rule is `RULE`; it asks of the mixture exactly what it asks of the
autoregressive side.

**How often it comes out** (`resampled`): the verdict is decided again on `RESAMPLES` resamples,
each drawing anew what it rests on: which of the two draws chooses and which judges, one training
run (seed) of every model, and the images of every set, the real set included (each set's values
moved by the scaled deviation of one of its random subsets from their mean, which varies as a
fresh set does (`arbench.metrics.measures.SUBSETS`) and keeps the metrics' correlations; the
classifier, measured once, by a normal deviate of its standard error). The headline verdict is
the outcome of at least `SHARE` of the resamples, or *unstable*. `pair_matrix` gives the same for
every autoregressive training run against every mixture run, without choosing representatives.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from arbench.core.plan import DIVERSITY, FIDELITY, METRICS, PARTS, model_entry, replicate_of
from arbench.metrics.known_answers import (
    REAL,
    RESOLVES,
    RESOLVING_METRICS,
    RESOLVING_SES,
    trails_by,
)
from arbench.metrics.measures import SUBSET_SCALE, better_by, no_better_than_real
from arbench.training import convergence

MARGIN = 2.0  # standard errors a difference must exceed to favour a side
AGREEING = 2  # metrics that must pass their checks for a verdict
SHARE = 0.8  # of the resamples a headline verdict must come out in
RESAMPLES = 200
UNSTABLE = "unstable"
AUTOREGRESSIVE, MIXTURE = "autoregressive", "mixture"
OTHER = {AUTOREGRESSIVE: MIXTURE, MIXTURE: AUTOREGRESSIVE}
RULE = (
    "A sample-quality metric votes in a part of the hypothesis (fidelity: Fréchet and kernel "
    "distances, precision, density, and the classifier test; diversity: recall, coverage, and "
    "the classifier test) only where, on the dataset, it ranked the known-answer sets of that "
    "part right, its standard error matched the spread of at least 20 independent draws "
    "(the error-bar check), and it puts one Gaussian more than "
    f"{RESOLVING_SES:g} standard errors behind real images by itself. Each family is "
    "represented by one model: the one best by the most voting metrics on a draw of samples kept "
    "for the choice; the two representatives are compared on another, independent draw, the one "
    "the tables show. Every value is read against the real images' own: a value better than "
    "real counts as real's, no more. A metric favours a side when the difference exceeds "
    f"{MARGIN:g} standard errors; a part favours a side when more of its voting metrics favour "
    "that side than the other. The hypothesis is *supported* when diversity favours the "
    "autoregressive side and fidelity does not favour the mixture (richer: reaching further "
    "without leaving where real images are); *contradicted* when diversity favours the mixture "
    "and fidelity does not favour the autoregressive side (the same, asked of the mixture); "
    "*not resolved* otherwise (for example more diverse but less faithful). It is *not tested* "
    f"when a family is missing, fewer than {AGREEING} metrics or no diversity metric votes. "
    "Two gates come before: "
    + convergence.RULE
    + " And a dataset is *not decided* when, at its set size, the metric check's single "
    f"Gaussian is behind real images by more than {RESOLVING_SES:g} standard errors on fewer "
    f"than {RESOLVING_METRICS} metrics that would otherwise vote. The verdict is decided again on "
    f"{RESAMPLES} resamples of the draws (which chooses, which judges), the seeds (one training "
    "run of every model) and the images of every set; the headline is the outcome of at least "
    f"{SHARE:.0%} of them, or *{UNSTABLE}*, with the shares."
)


def family(name: str) -> str:
    return model_entry(name).family


def voting_parts(check: dict, errors: dict) -> dict[str, list[str]]:
    """Per metric, the parts it votes in: those whose known-answer checks it passed, where its
    error bar is within the error-bar check's tolerance and the set size resolves one Gaussian
    from real images by itself (otherwise none)."""
    votes = {}
    for metric, judged in check["metrics"].items():
        trusted = judged[RESOLVES]["passed"] and errors["metrics"][metric]["within"]
        votes[metric] = list(judged["sound"]) if trusted else []
    return votes


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


def runs_by_model(names) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for name in names:
        runs.setdefault(replicate_of(name)[0], []).append(name)
    return runs


def by_model(measured: dict[str, dict]) -> dict[str, dict]:
    """Training runs' measurements (nade, nade.r1, ...) pooled per model, metric by metric (of
    the metrics every run has)."""
    return {
        model: {
            metric: pooled([measured[n][metric] for n in names])
            for metric in METRICS
            if all(metric in measured[n] for n in names)
        }
        for model, names in runs_by_model(measured).items()
    }


def read_against_real(measured: dict[str, dict], real: dict) -> dict[str, dict]:
    """Every model's measurements as the verdict reads them: no better than the real set's."""
    return {
        model: {
            metric: no_better_than_real(metric, found[metric], real[metric])
            for metric in METRICS
            if metric in found
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


def favoured(gap: float, se: float) -> str | None:
    if gap > MARGIN * se:
        return AUTOREGRESSIVE
    if gap < -MARGIN * se:
        return MIXTURE
    return None


def evidence(
    judged: dict[str, dict], selection: dict[str, dict], real: dict, votes: dict[str, list[str]]
) -> list[dict]:
    """One row per metric: the parts it votes in, the two families' representatives (chosen on
    the `selection` draw), their values on the `judged` draw (read against the `real` set's) and
    which side that favours. `judged` and `selection`: model (or training run) -> its
    measurements on that draw."""
    judged = read_against_real(judged, real)
    selection = read_against_real(selection, real)
    ours = [m for m in judged if family(m) == AUTOREGRESSIVE]
    theirs = [m for m in judged if family(m) == MIXTURE]
    voting = [m for m in METRICS if votes[m]]
    if ours and theirs:
        a = representative(selection, ours, voting)
        b = representative(selection, theirs, voting)
    rows = []
    for metric in METRICS:
        row = {"metric": metric, "parts": METRICS[metric][1], "votes": votes[metric]}
        if ours and theirs:
            gap, se = better_by(metric, judged[a][metric], judged[b][metric])
            row.update(
                autoregressive=a,
                autoregressive_value=judged[a][metric],
                mixture=b,
                mixture_value=judged[b][metric],
                better_by=gap,
                se=se,
                favours=favoured(gap, se),
            )
        rows.append(row)
    return rows


def findings(rows: list[dict]) -> dict[str, dict]:
    """Per part of the hypothesis: its voting metrics, those favouring each side, and the side
    the part favours (None: neither, or no metric of the part voted)."""
    found = {}
    for part in PARTS:
        voting = [r for r in rows if part in r["votes"]]
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
    """The training runs (of `training`: run -> how it ended) whose NLL was still falling faster
    than `arbench.training.convergence.TOLERANCE` when they ended, whatever ended them."""
    return {run: record for run, record in training.items() if convergence.unfinished(record)}


def unfinished_reason(runs: dict[str, dict | None]) -> str:
    parts = []
    for run, record in runs.items():
        if record is None:
            parts.append(f"{run.upper()}'s training did not record how it ended")
        elif record["improvement_per_epoch"] is None:
            parts.append(f"{run.upper()} was ended by {record['ended_by']} at an unmeasured rate")
        else:
            unit = "iteration" if record["ended_by"] == convergence.ITERATION_CAP else "epoch"
            parts.append(
                f"{run.upper()} still improving ({record['improvement_per_epoch']:.3g} nats/{unit} "
                f"when {record['ended_by']} ended it)"
            )
    return "; ".join(parts)


def sides_outcome(parts: dict[str, dict]) -> str:
    """The rule's outcome from the side each part favours: symmetric in the two families."""
    for side in (AUTOREGRESSIVE, MIXTURE):
        if parts[DIVERSITY]["favours"] == side and parts[FIDELITY]["favours"] != OTHER[side]:
            return "supported" if side == AUTOREGRESSIVE else "contradicted"
    return "not resolved"


def decide(
    rows: list[dict],
    check: dict,
    errors: dict,
    unfinished: dict[str, dict | None] | None = None,
) -> dict:
    """The outcome, its reason and the finding of each part, from the evidence rows, by `RULE`:
    `check` and `errors`, the metric check and the error-bar check; `unfinished`, the training
    runs still improving when they ended (`still_improving`)."""
    parts = findings(rows)
    if not rows or "favours" not in rows[0]:
        return {
            "outcome": "not tested",
            "reason": "it needs an autoregressive model and a mixture",
            "parts": parts,
        }
    if unfinished:
        return {"outcome": "not decided", "reason": unfinished_reason(unfinished), "parts": parts}
    voting = [r["metric"] for r in rows if r["votes"]]
    trusted = [
        m
        for m in check["metrics"]
        if check["metrics"][m]["sound"] and errors["metrics"][m]["within"]
    ]
    if len(trusted) >= AGREEING and len(voting) < RESOLVING_METRICS:
        shown = ", ".join(f"{m} {trails_by(m, check['sets']):.1f}" for m in trusted)
        return {
            "outcome": "not decided",
            "reason": (
                f"this dataset cannot resolve the question at {check['images_per_set']} "
                f"images a set: of the metrics that rank the known sets right with checked "
                f"error bars, one Gaussian trails real images by more than {RESOLVING_SES:g} "
                f"standard errors on {len(voting)} ({shown}); {RESOLVING_METRICS} are needed"
            ),
            "parts": parts,
        }
    if len(voting) < AGREEING or not parts[DIVERSITY]["voting"]:
        return {
            "outcome": "not tested",
            "reason": f"{len(voting)} metric(s) vote on this dataset, "
            f"{len(parts[DIVERSITY]['voting'])} of them of diversity; at least {AGREEING}, and "
            "one of diversity, are needed",
            "parts": parts,
        }
    reason = "; ".join(describe_part(part, parts[part]) for part in (DIVERSITY, FIDELITY))
    return {"outcome": sides_outcome(parts), "reason": reason, "parts": parts}


def verdict(
    judged: dict[str, dict],
    selection: dict[str, dict],
    check: dict,
    errors: dict,
    unfinished: dict[str, dict | None],
) -> tuple[list[dict], dict]:
    """The evidence rows and the decision on the draws as measured, every model's training runs
    pooled. `judged`, `selection`: training run -> its measurements on that draw."""
    votes = voting_parts(check, errors)
    rows = evidence(by_model(judged), by_model(selection), check["sets"][REAL], votes)
    return rows, decide(rows, check, errors, unfinished)


def redrawn(found: dict, rng: np.random.Generator) -> dict:
    """One set's measurements as a fresh draw of its images might give them: each moved by the
    deviation of one random subset's estimate (the same subset for every metric) from the
    subsets' mean, scaled as the standard error is (`arbench.metrics.measures.SUBSET_SCALE`); a
    measurement without subsets by a normal deviate of its standard error."""
    count = min(len(found[m]["subsets"]) for m in METRICS if "subsets" in found[m])
    subset = int(rng.integers(count))
    moved = {}
    for metric in METRICS:
        value = found[metric]
        if "subsets" in value:
            deviation = value["subsets"][subset] - float(np.mean(value["subsets"]))
            shift = SUBSET_SCALE * deviation
        else:
            shift = value["se"] * float(rng.normal())
        moved[metric] = {"value": value["value"] + shift, "se": value["se"]}
    return moved


def shares(outcomes: list[str]) -> dict[str, float]:
    counted = Counter(outcomes)
    return {outcome: n / len(outcomes) for outcome, n in counted.most_common()}


def headline(found: dict[str, float]) -> str:
    """The outcome of at least `SHARE` of the resamples, or `UNSTABLE`."""
    outcome, share = next(iter(found.items()))
    return outcome if share >= SHARE else UNSTABLE


def resampled(
    judged: dict[str, dict],
    selection: dict[str, dict],
    check: dict,
    errors: dict,
    unfinished: dict[str, dict | None],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """The share of resamples (draws swapped or not, one run of every model, every set's images
    redrawn) that gives each outcome, most frequent first."""
    rng = np.random.default_rng(seed)
    votes = voting_parts(check, errors)
    runs = runs_by_model(judged)
    outcomes = []
    for _ in range(resamples):
        draws = (selection, judged) if rng.random() < 0.5 else (judged, selection)
        chosen = {model: names[int(rng.integers(len(names)))] for model, names in runs.items()}
        on = [{model: redrawn(draw[run], rng) for model, run in chosen.items()} for draw in draws]
        real = redrawn(check["sets"][REAL], rng)
        rows = evidence(on[0], on[1], real, votes)
        outcomes.append(decide(rows, check, errors, unfinished)["outcome"])
    return shares(outcomes)


def pair_matrix(
    judged: dict[str, dict],
    selection: dict[str, dict],
    check: dict,
    errors: dict,
    unfinished: dict[str, dict | None],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, dict]]:
    """For every autoregressive training run against every mixture run: the outcome on the draw
    the tables show, and the shares of outcomes over resamples of the draws and the images."""
    votes = voting_parts(check, errors)
    ours = [r for r in judged if family(r) == AUTOREGRESSIVE]
    theirs = [r for r in judged if family(r) == MIXTURE]
    rng = np.random.default_rng(seed)
    matrix: dict[str, dict[str, dict]] = {}
    for a in ours:
        for b in theirs:
            held = {r: unfinished[r] for r in (a, b) if r in unfinished}
            pair = {r: judged[r] for r in (a, b)}
            rows = evidence(pair, pair, check["sets"][REAL], votes)
            outcomes = []
            for _ in range(resamples):
                draw = selection if rng.random() < 0.5 else judged
                moved = {r: redrawn(draw[r], rng) for r in (a, b)}
                real = redrawn(check["sets"][REAL], rng)
                again = evidence(moved, moved, real, votes)
                outcomes.append(decide(again, check, errors, held)["outcome"])
            matrix.setdefault(a, {})[b] = {
                "outcome": decide(rows, check, errors, held)["outcome"],
                "shares": shares(outcomes),
            }
    return matrix
