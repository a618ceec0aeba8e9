"""The verdict on the study's hypothesis, per dataset, by a rule fixed before any number.

The hypothesis: autoregressive models give richer samples than mixture models. "Richer" has two
parts, each measured by one **primary metric** and reported with the others of its part as
support: **diversity**, the samples reach everywhere real images do (recall, coverage, NDB and
its divergence, the class histogram), and **fidelity**, they do not leave where real images are
(Fréchet and kernel distances, precision, density, the classifier two-sample test). A metric
counts in one part only.

What is declared before any comparison, from the metric check alone (`declared`):

- each part's primary metric: of the metrics that rank the part's known-answer sets right (with
  the errors the error-bar check calibrated), the one that separates the part's defining set
  from real images by the most standard errors (fidelity: one moment-matched Gaussian;
  diversity: real images without their smallest mode);
- each part's margin of equivalence: `arbench.metrics.known_answers.MARGIN_SHARE` of that
  separation, in the primary metric's units;
- the comparisons: the primary pair (the original study's: MADE against the Gaussian mixture on
  whitened principal components, `arbench.core.plan.PRIMARY_PAIR`), then every autoregressive
  model against every mixture (the family matrix), with no representative chosen by sample
  metrics.

How a model is measured (`model_values`): each training run's value is the mean over its
independent draws of samples, its error their spread (the classifier test, run on fewer draws, has
the larger of that and its binomial error as the error-bar check calibrated it); a model's value is
the mean over its training runs (seeds), its error the larger of the spread between the runs and
the runs' own, with the degrees of freedom of the one taken. A difference between two models adds
what the shared test images bring (paired: `arbench.metrics.measures.better_by`) and is read with
Student's t at the Welch-Satterthwaite degrees of freedom. Every value is read against the real
images' own: a value better than real counts as real's.

A part's finding (`compare`): *equal within the margin* when the 90% interval of the difference
lies inside the margin (two one-sided tests at 5%); otherwise it *favours* a side when the 95%
interval excludes zero; otherwise *not resolved*. The smallest difference the comparison could
have detected (at 5%, with 80% power) is given beside it. The outcome (`outcome`): *supported*
when diversity favours the autoregressive side and fidelity does not favour the mixture;
*contradicted*, the same asked of the mixture; *equal within the margin* when diversity is;
*not resolved* otherwise; *not tested* when diversity has no primary metric; *not decided*
when a model of the pair had not finished learning. Over the family matrix the answer is the
outcome every pair gives, or *model-dependent* with the pairs that differ.

How often an outcome comes out (`agreement`): decided again on `RESAMPLES` resamples of the
training runs and of each run's draws (drawn with replacement); the share giving the majority
outcome.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from scipy import stats

from arbench.core.plan import DIVERSITY, FIDELITY, METRICS, PARTS, model_entry, replicate_of
from arbench.metrics.error_bars import calibrated
from arbench.metrics.known_answers import MARGIN_SHARE, REAL, judge_all, primary
from arbench.metrics.measures import SUBSET_SCALE, SUBSETS, no_better_than_real
from arbench.training import convergence

CLASSIFIER = "c2st_accuracy"
LEVEL = 0.05  # two-sided, of a difference's test
POWER = 0.8  # of the smallest detectable difference
RESAMPLES = 200
AUTOREGRESSIVE, MIXTURE = "autoregressive", "mixture"
OTHER = {AUTOREGRESSIVE: MIXTURE, MIXTURE: AUTOREGRESSIVE}
EQUAL = "equal within the margin"
SUPPORTED, CONTRADICTED = "supported", "contradicted"
NOT_RESOLVED, NOT_TESTED, NOT_DECIDED = "not resolved", "not tested", "not decided"
# outcomes a gate gives before any measurement decides, alike in every resample
GATES = (NOT_DECIDED, NOT_TESTED)
MODEL_DEPENDENT = "model-dependent"

RULE = [
    "The hypothesis has two parts: diversity (samples reach everywhere real images do) and "
    "fidelity (samples stay where real images are).",
    "Each part has one primary metric, chosen by the metric check alone. Of the metrics that "
    "rank the part's sets of known quality right, it is the one that tells the part's defining "
    "set from real images by the most standard errors. Fidelity's defining set is one Gaussian "
    "fitted to the real images' mean and covariance; diversity's is the real images with their "
    "smallest mode removed. The part's other metrics are support.",
    f"Each part's margin is {MARGIN_SHARE:.0%} of that separation, in the primary metric's "
    "units. A difference inside the margin counts as equal.",
    "Each training run (seed) draws several independent sets of samples. A model's value is the "
    "mean over its runs of each run's mean over its draws. Its error is the larger of two "
    "spreads: between its runs, and between each run's draws.",
    "A difference between two models also carries the variability of the test images both are "
    "measured against. It is read with Student's t.",
    "A value better than real images' own counts as equal to real images' value.",
    f"A part reads equal within the margin when the 90% interval of the difference lies inside "
    f"the margin (two one-sided tests at {LEVEL:.0%}). Otherwise it favours a side when the 95% "
    "interval excludes zero. Otherwise it is not resolved.",
    "Supported: diversity favours the autoregressive model, and fidelity does not favour the "
    "mixture. Contradicted: diversity favours the mixture, and fidelity does not favour the "
    "autoregressive model. Equal within the margin: diversity reads equal. Otherwise: not "
    "resolved.",
    "The primary comparison is the original study's pair: MADE against the Gaussian mixture on "
    "whitened principal components (the PCA-GMM). The family question compares every "
    "autoregressive model with every mixture. Its answer is the outcome all pairs give, or "
    "model-dependent.",
    f"A pair is not decided when one of its models was still learning when its training ended: "
    f"its NLL was still falling by more than {convergence.TOLERANCE:.2%} of its value an epoch.",
]


def family(name: str) -> str:
    return model_entry(name).family


# ---------------------------------------------------------------------------------------------
# The metric check, with calibrated errors: what is declared before any comparison


def calibrated_sets(check: dict, errors: dict) -> dict:
    """The metric check's sets with every error as the error-bar check calibrated it."""
    calibration = errors["metrics"]
    sets = {}
    for name, found in check["sets"].items():
        sets[name] = dict(found)
        for metric, value in found.items():
            if isinstance(value, dict) and "se" in value:
                base = CLASSIFIER if metric.startswith(CLASSIFIER) else metric
                sets[name][metric] = {
                    **value,
                    "se": calibrated(value["se"], calibration.get(base)),
                    "df": SUBSETS - 1,  # the subsets' (or, for the classifier, plenty)
                }
    return sets


def declared(check: dict, errors: dict) -> dict:
    """The metric check judged with calibrated errors; per part its primary metric, margin and
    supporting metrics."""
    sets = calibrated_sets(check, errors)
    judged = judge_all(sets)
    parts = {}
    for part in PARTS:
        chosen = primary(judged, part)
        parts[part] = {
            "primary": chosen,
            "margin": judged[chosen]["margin"] if chosen else None,
            "separation": judged[chosen]["separation"] if chosen else None,
            "support": [
                m
                for m, found in judged.items()
                if found["part"] == part and found["sound"] and m != chosen
            ],
        }
    return {"judged": judged, "parts": parts, "real": sets[REAL]}


# ---------------------------------------------------------------------------------------------
# Models measured over their draws and training runs


def run_values(model: dict, errors: dict, draws: list[int] | None = None) -> dict[str, dict]:
    """One training run's value of every metric (`model`: its quality file's `model`): the mean
    over its draws (`draws`: which, with repeats, for a resample), the error their spread."""
    chosen = draws if draws is not None else list(range(len(model["draws"])))
    values = {}
    for metric in model["draws"][0]:
        found = np.array([model["draws"][i][metric] for i in chosen])
        values[metric] = {
            "value": float(found.mean()),
            "se": float(found.std(ddof=1) / math.sqrt(len(found))) if len(found) > 1 else 0.0,
            "df": len(found) - 1,
            "reference": model["reference"].get(metric),
        }
    tests = model[CLASSIFIER]
    accuracies = np.array([t["value"] for t in tests])
    spread = accuracies.std(ddof=1) / math.sqrt(len(tests)) if len(tests) > 1 else 0.0
    calibration = errors["metrics"].get(CLASSIFIER)
    given = math.sqrt(np.mean([calibrated(t["se"], calibration) ** 2 for t in tests]) / len(tests))
    freedom = calibration["freedom"] if calibration and calibration["freedom"] else 1_000
    values[CLASSIFIER] = {
        "value": float(accuracies.mean()),
        "se": float(max(spread, given)),
        "df": len(tests) - 1 if spread > given else freedom,
        "reference": None,
    }
    return values


def pooled(runs: list[dict]) -> dict:
    """A model's value of one metric over its training runs: their mean, the larger of the
    spread between them (SD / sqrt(runs)) and their own errors, with its degrees of freedom."""
    values = np.array([run["value"] for run in runs])
    within = math.sqrt(sum(run["se"] ** 2 for run in runs)) / len(runs)
    between = float(values.std(ddof=1) / math.sqrt(len(runs))) if len(runs) > 1 else 0.0
    references = [run["reference"] for run in runs]
    reference = None
    if all(r is not None for r in references):
        reference = np.mean(references, axis=0).tolist()
    return {
        "value": float(values.mean()),
        "se": max(within, between),
        "df": len(runs) - 1 if between > within else sum(run["df"] for run in runs),
        "runs": len(runs),
        "between_runs": between,
        "reference": reference,
    }


def runs_by_model(names) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for name in names:
        runs.setdefault(replicate_of(name)[0], []).append(name)
    return runs


def model_values(quality: dict[str, dict], errors: dict, choice: dict | None = None) -> dict:
    """Every model's value of every metric over its training runs (`quality`: run -> its quality
    file). `choice`, for a resample: model -> [(run, [draws])]."""
    values = {}
    for model, names in runs_by_model(quality).items():
        picked = choice[model] if choice else [(n, None) for n in names]
        runs = [run_values(quality[n]["model"], errors, d) for n, d in picked]
        values[model] = {metric: pooled([r[metric] for r in runs]) for metric in runs[0]}
    return values


# ---------------------------------------------------------------------------------------------
# One comparison


def difference(metric: str, ours: dict, theirs: dict, real: dict) -> dict:
    """How much better `ours` is than `theirs` by `metric` (both read against `real`), its
    standard error and degrees of freedom."""
    a = no_better_than_real(metric, ours, real)
    b = no_better_than_real(metric, theirs, real)
    gap = a["value"] - b["value"]
    if METRICS[metric][0] == "lower":
        gap = -gap
    parts = [(a["se"] ** 2, a["df"]), (b["se"] ** 2, b["df"])]
    if a.get("reference") and b.get("reference"):
        shared = np.var(np.subtract(a["reference"], b["reference"]), ddof=1) * SUBSET_SCALE**2
        parts.append((float(shared), SUBSETS - 1))
    variance = sum(v for v, _ in parts)
    spread = sum(v**2 / max(df, 1) for v, df in parts)
    df = variance**2 / spread if spread > 0 else math.inf
    return {
        "ours": a["value"],
        "theirs": b["value"],
        "ours_beyond_real": a["beyond_real"],
        "theirs_beyond_real": b["beyond_real"],
        "better_by": gap,
        "se": math.sqrt(variance),
        "df": df,
    }


def quantile(p: float, df: float) -> float:
    return float(stats.norm.ppf(p) if not math.isfinite(df) else stats.t.ppf(p, max(df, 1)))


def compare(metric: str, ours: dict, theirs: dict, real: dict, margin: float | None) -> dict:
    """A comparison on one metric: the difference, its intervals, its finding (which side it
    favours, equal within the margin, or not resolved) and the smallest difference it could
    have detected."""
    found = difference(metric, ours, theirs, real)
    gap, se, df = found["better_by"], found["se"], found["df"]
    wide = quantile(1 - LEVEL / 2, df) * se
    narrow = quantile(1 - LEVEL, df) * se
    if margin is not None and -margin < gap - narrow and gap + narrow < margin:
        finding = EQUAL
    elif gap - wide > 0:
        finding = AUTOREGRESSIVE
    elif gap + wide < 0:
        finding = MIXTURE
    else:
        finding = NOT_RESOLVED
    return {
        "metric": metric,
        **found,
        "interval": [gap - wide, gap + wide],
        "margin": margin,
        "finding": finding,
        "detectable": (quantile(1 - LEVEL / 2, df) + quantile(POWER, df)) * se,
    }


def part_findings(ours: dict, theirs: dict, plan: dict) -> dict[str, dict]:
    """Per part: the primary metric's comparison and the supporting metrics' (those both models
    were measured by), and whether a supporting metric contradicts the primary's finding."""
    real = plan["real"]
    found = {}
    for part in PARTS:
        chosen = plan["parts"][part]
        if chosen["primary"] is None or chosen["primary"] not in ours:
            found[part] = {"primary": None, "support": [], "finding": None, "disagree": []}
            continue
        main = compare(
            chosen["primary"],
            ours[chosen["primary"]],
            theirs[chosen["primary"]],
            real[chosen["primary"]],
            chosen["margin"],
        )
        support = [
            compare(m, ours[m], theirs[m], real[m], None)
            for m in chosen["support"]
            if m in ours and m in theirs
        ]
        sides = (AUTOREGRESSIVE, MIXTURE)
        disagree = [
            s["metric"]
            for s in support
            if s["finding"] in sides
            and main["finding"] in sides
            and s["finding"] != main["finding"]
            or s["finding"] in sides
            and main["finding"] == EQUAL
        ]
        found[part] = {
            "primary": main,
            "support": support,
            "finding": main["finding"],
            "disagree": disagree,
        }
    return found


def outcome(parts: dict[str, dict]) -> str:
    """The rule's outcome from the two parts' findings: symmetric in the two families."""
    diversity, fidelity = parts[DIVERSITY]["finding"], parts[FIDELITY]["finding"]
    if diversity is None:
        return NOT_TESTED
    if diversity == EQUAL:
        return EQUAL
    for side, answer in ((AUTOREGRESSIVE, SUPPORTED), (MIXTURE, CONTRADICTED)):
        if diversity == side and fidelity != OTHER[side]:
            return answer
    return NOT_RESOLVED


def decide(ours: str, theirs: str, values: dict, plan: dict, unfinished: set[str]) -> dict:
    """The outcome of one autoregressive model against one mixture."""
    parts = part_findings(values[ours], values[theirs], plan)
    held = sorted(run for run in unfinished if replicate_of(run)[0] in (ours, theirs))
    if held:
        return {"outcome": NOT_DECIDED, "parts": parts, "unfinished": held}
    return {"outcome": outcome(parts), "parts": parts, "unfinished": []}


# ---------------------------------------------------------------------------------------------
# The dataset's answer


def resample_choice(quality: dict[str, dict], rng: np.random.Generator) -> dict:
    """Training runs of every model, and draws of every run, drawn with replacement."""
    choice = {}
    for model, names in runs_by_model(quality).items():
        picked = rng.choice(names, len(names))
        choice[model] = [
            (
                n,
                rng.integers(
                    0, len(quality[n]["model"]["draws"]), len(quality[n]["model"]["draws"])
                ).tolist(),
            )
            for n in picked
        ]
    return choice


def agreement(outcomes: list[str]) -> dict:
    counted = Counter(outcomes)
    majority, count = counted.most_common(1)[0]
    return {
        "majority": majority,
        "share": count / len(outcomes),
        "shares": {o: n / len(outcomes) for o, n in counted.most_common()},
    }


def answer(
    quality: dict[str, dict],
    check: dict,
    errors: dict,
    unfinished: set[str],
    pair: tuple[str, str],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict:
    """One dataset's verdict: what was declared, the primary pair's comparison, the family
    matrix with each cell's agreement over resamples, and the family's answer.
    `quality`: training run -> its quality file."""
    plan = declared(check, errors)
    values = model_values(quality, errors)
    ours = [m for m in values if family(m) == AUTOREGRESSIVE]
    theirs = [m for m in values if family(m) == MIXTURE]
    rng = np.random.default_rng(seed)
    again = [model_values(quality, errors, resample_choice(quality, rng)) for _ in range(resamples)]
    matrix: dict[str, dict[str, dict]] = {}
    for a in ours:
        for b in theirs:
            decided = decide(a, b, values, plan, unfinished)
            redone = [decide(a, b, v, plan, unfinished)["outcome"] for v in again]
            matrix.setdefault(a, {})[b] = {**decided, "agreement": agreement(redone)}
    primary_pair = None
    if pair[0] in values and pair[1] in values:
        primary_pair = {"pair": list(pair), **matrix[pair[0]][pair[1]]}
    return {
        "declared": {part: found for part, found in plan["parts"].items()},
        "primary_pair": primary_pair,
        "matrix": matrix,
        "family": family_answer(matrix),
        "models": values,
    }


def family_answer(matrix: dict[str, dict[str, dict]]) -> dict:
    """The outcome every autoregressive model against every mixture gives, or model-dependent
    with the pairs that differ from the most common outcome."""
    cells = [(a, b, cell["outcome"]) for a, row in matrix.items() for b, cell in row.items()]
    if not cells:
        return {"outcome": NOT_TESTED, "differing": [], "counts": {}}
    counted = Counter(o for _, _, o in cells)
    common = counted.most_common(1)[0][0]
    differing = [[a, b, o] for a, b, o in cells if o != common]
    return {
        "outcome": common if not differing else MODEL_DEPENDENT,
        "most_common": common,
        "differing": differing,
        "counts": dict(counted),
    }


def still_improving(training: dict[str, dict | None]) -> set[str]:
    """The training runs (of `training`: run -> how it ended) whose NLL was still falling faster
    than `arbench.training.convergence.TOLERANCE` when they ended, whatever ended them."""
    return {run for run, record in training.items() if convergence.unfinished(record)}
