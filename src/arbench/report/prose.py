"""The report's words: the answer on its first screen, the rule as a numbered list, what each
dataset's comparison found in a sentence or two, the notes said once, and how sample quality is
measured. Everything else is a table or a figure."""

from __future__ import annotations

from arbench.metrics.known_answers import MARGIN_SHARE, in_standard_errors
from arbench.metrics.measures import C2ST
from arbench.metrics.verdict import (
    AUTOREGRESSIVE,
    CONTRADICTED,
    EQUAL,
    LEVEL,
    MIXTURE,
    MODEL_DEPENDENT,
    NOT_DECIDED,
    NOT_RESOLVED,
    NOT_TESTED,
    POWER,
    RESAMPLES,
    RULE,
    SUPPORTED,
)
from arbench.report.tables import SHOWN, direction, majority_elsewhere, resamples_note

QUESTION = (
    "**The question.** Do autoregressive models (NADE, MADE, a gated PixelCNN) give richer samples "
    "than mixture models (Gaussian mixtures: diagonal `gmm_diag`, full covariance `gmm`, on "
    "whitened principal components as the original study fitted it `pca_gmm`; a mixture of "
    "Bernoullis `mob`)? Richer: more diverse (reaching everywhere real images do) without less "
    "fidelity (staying where they are)."
)


PAIR_NAME = "the original study's pair"


def answer_cell(found: dict | None) -> str:
    """One dataset's answer for the first screen: the primary pair's outcome, and how often
    resamples of seeds and draws give the majority outcome where a measurement decided it."""
    if found is None:
        return "not compared (a model of the pair is missing)"
    return f"**{found['outcome']}**{resamples_note(found)}"


# the order in which the first screen counts the pairs of each outcome
COUNTED = (SUPPORTED, CONTRADICTED, EQUAL, NOT_RESOLVED, NOT_DECIDED, NOT_TESTED)
COUNTED_NAME = {EQUAL: "equal"}


def counted(verdicts: dict[str, dict]) -> list[str]:
    """The outcomes any dataset's pairs have, in `COUNTED`'s order."""
    found = {o for v in verdicts.values() for o, n in v["family"]["counts"].items() if n}
    return [outcome for outcome in COUNTED if outcome in found]


def part_reading(part: dict, pair: list[str]) -> str:
    """What a part's primary metric reads for the pair: both values and the side it favours."""
    primary = part["primary"]
    if primary is None:
        return "no metric passes the metric check"
    metric = primary["metric"]
    side = {AUTOREGRESSIVE: pair[0], MIXTURE: pair[1], EQUAL: "equal (margin)"}
    return (
        f"{SHOWN.get(metric, metric)} {direction(metric)}: {pair[0]} {primary['ours']:.3g}, "
        f"{pair[1]} {primary['theirs']:.3g} → {side.get(primary['finding'], 'neither side')}"
    )


def why(found: dict) -> tuple[str, str]:
    """Why the primary pair reads as it does: per part (diversity, fidelity) its primary
    metric's values and the side it favours, or the gate that held the pair."""
    pair = found["primary_pair"]
    if pair is None:
        cells = [cell for row in found["matrix"].values() for cell in row.values()]
        held = sorted({run for cell in cells for run in cell["unfinished"]})
        return ("still learning: " + ", ".join(held) if held else "", "")
    if pair["outcome"] == NOT_DECIDED:
        return ("still learning: " + ", ".join(pair["unfinished"]), "")
    parts = pair["parts"]
    return part_reading(parts["diversity"], pair["pair"]), part_reading(
        parts["fidelity"], pair["pair"]
    )


OUTCOMES = {
    SUPPORTED: "the autoregressive model's samples are more diverse, and no less faithful.",
    CONTRADICTED: "the mixture's are.",
    EQUAL: (
        f"the two are equally diverse: the difference is inside the margin ({MARGIN_SHARE:.0%} of "
        "what dropping a mode does). Fidelity is not part of this outcome."
    ),
    NOT_RESOLVED: (
        "diversity neither favours a side nor reads equal, or the side it favours is the less "
        "faithful."
    ),
    NOT_DECIDED: "a model of the pair was still learning when its training ended.",
    NOT_TESTED: "no diversity metric passed the metric check.",
    MODEL_DEPENDENT: "the pairs of the two families do not all give one answer.",
}


def judged_pairs(verdicts: dict[str, dict]) -> list[dict]:
    """Every pair the verdicts judged: each dataset's matrix cells and its original study's pair."""
    cells = [c for v in verdicts.values() for row in v["matrix"].values() for c in row.values()]
    return cells + [v["primary_pair"] for v in verdicts.values() if v["primary_pair"]]


def outcomes_legend(verdicts: dict[str, dict]) -> str:
    """The outcomes the first screen and the pair matrices show, each defined once."""
    shown = {cell["outcome"] for cell in judged_pairs(verdicts)}
    shown |= {found["family"]["outcome"] for found in verdicts.values()}
    return " ".join(
        f"**{outcome[0].upper() + outcome[1:]}**: {meaning}"
        for outcome, meaning in OUTCOMES.items()
        if outcome in shown
    )


def limits(verdicts: dict[str, dict]) -> str:
    """How far the answer can be trusted, said on the first screen: the weakest primary
    instrument, where the original study's pair could not have shown equality, and which
    models a dataset did not train."""
    separations = [
        (
            found["declared"][part]["separation"]["standard_errors"],
            dataset,
            part,
            found["declared"][part]["primary"],
        )
        for dataset, found in verdicts.items()
        for part in ("fidelity", "diversity")
        if found["declared"][part]["primary"] is not None
    ]
    text = []
    if separations:
        weakest, dataset, part, metric = min(separations)
        text.append(
            f"the weakest primary instrument is {dataset}'s {part} metric "
            f"({SHOWN.get(metric, metric)}), separating its defining set from real images by "
            f"{in_standard_errors(weakest)}"
        )
    coarse = [
        f"{dataset} ({', '.join(parts)})"
        for dataset, found in verdicts.items()
        if found["primary_pair"]
        and (parts := [p for p, f in found["primary_pair"]["parts"].items() if too_coarse(f)])
    ]
    if coarse:
        text.append(f"{PAIR_NAME} could not have read equal in " + " and ".join(coarse))
    models = {m for found in verdicts.values() for m in found["models"]}
    absent = [
        f"{', '.join(sorted(models - set(found['models'])))} ({dataset})"
        for dataset, found in verdicts.items()
        if models - set(found["models"])
    ]
    if absent:
        text.append("not trained: " + "; ".join(absent))
    return ("**Limits**: " + "; ".join(text) + ".") if text else ""


def first_screen(verdicts: dict[str, dict], best: dict[str, str], links: list[str]) -> str:
    """The question, the answer per dataset (the original study's pair first, then every pair
    of the two families), why, and the way to every section."""
    outcomes = counted(verdicts)
    lines = [
        QUESTION + "\n",
        f"| dataset | {PAIR_NAME}: MADE against the PCA-GMM | every autoregressive model "
        "against every mixture | pairs: "
        + " / ".join(COUNTED_NAME.get(o, o) for o in outcomes)
        + " | why: diversity (primary metric) | why: fidelity (primary metric) | best test "
        "NLL ↓, nats/image: autoregressive / mixture |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for dataset, found in verdicts.items():
        diversity, fidelity = why(found)
        counts = " / ".join(str(found["family"]["counts"].get(o, 0)) for o in outcomes)
        lines.append(
            f"| {dataset} | {answer_cell(found['primary_pair'])} | "
            f"**{found['family']['outcome']}** | {counts} | {diversity} | {fidelity} | "
            f"{best[dataset]} |"
        )
    lines.append(
        f"\n{outcomes_legend(verdicts)} (97% of resamples): of {RESAMPLES} resamples of the "
        "training runs and their draws, 97% give the outcome shown"
        + (
            "; (resamples: supported 66%): most give another outcome, named"
            if any(majority_elsewhere(cell) for cell in judged_pairs(verdicts))
            else ""
        )
        + ". ↓: lower is better; ↑: higher is. (bound): an upper bound on the NLL, not the exact "
        "value; a lower NLL than a bound does not rank the two.\n"
    )
    lines.append(limits(verdicts) + "\n")
    lines.append("Sections: " + " · ".join(links) + "\n")
    return "\n".join(lines)


def rule_section() -> str:
    return (
        "## The rule\n\nFixed before any number below.\n\n"
        + "\n".join(f"{i}. {line}" for i, line in enumerate(RULE, 1))
        + "\n"
    )


def pair_sentence(found: dict) -> str:
    pair = found["primary_pair"]
    if pair is None:
        return f"MADE or the PCA-GMM is not trained here: {PAIR_NAME} is not compared."
    a, b = pair["pair"]
    text = f"**{a} against {b}: {pair['outcome']}**"
    if pair["unfinished"]:
        text += f" ({', '.join(pair['unfinished'])} had not finished learning)"
    disagree = [
        f"in {part}, {', '.join(SHOWN.get(m, m) for m in f['disagree'])} "
        f"disagree{'s' if len(f['disagree']) == 1 else ''} with the primary metric"
        for part, f in pair["parts"].items()
        if f["disagree"]
    ]
    if disagree:
        text += "; " + "; ".join(disagree)
    return text + "."


def too_coarse(part: dict) -> bool:
    """Whether a part's primary comparison could not have shown equality: the smallest
    difference it detects is wider than the margin."""
    return bool(part["primary"]) and part["primary"]["detectable"] > part["primary"]["margin"]


def undetectable_equality(parts: dict) -> str:
    """Where a part's primary comparison could not have shown equality (`too_coarse`)."""
    wide = [
        f"{part} ({found['primary']['detectable']:.2g} against a margin of "
        f"{found['primary']['margin']:.2g})"
        for part, found in parts.items()
        if too_coarse(found)
    ]
    if not wide:
        return ""
    return (
        "The smallest detectable difference exceeds the margin in "
        + " and ".join(wide)
        + ": there this comparison could not have shown the two equal."
    )


def family_sentence(found: dict) -> str:
    family = found["family"]
    text = f"Every autoregressive model against every mixture: **{family['outcome']}**"
    if family["differing"]:
        count = family["counts"][family["most_common"]]
        total = sum(family["counts"].values())
        text += f"; {count} of {total} pairs {family['most_common']}, but " + "; ".join(
            f"{a} against {b} {o}" for a, b, o in family["differing"]
        )
    return text + "."


LIKELIHOOD_NOTE = (
    "NADE, MADE, PixelCNN, the mixture of Bernoullis and the diagonal Gaussian mixture give exact "
    "discrete likelihoods; the full and PCA Gaussian mixtures' are the uniform-dequantization "
    "upper bound, so a difference against them (≥) is a lower bound on the true one: negative, "
    "it does not rank the pair; positive, the mixture is better even by its bound. ± is one "
    "standard error (over test images, and between training runs where that is larger); "
    "intervals are 95%."
)


def copies_sentence(meta: dict) -> str:
    """What share of the test images are exact copies of training images (from the sidecar)."""
    counts = meta.get("duplicates", {}).get("test")
    if counts is None:
        return ""
    share = counts["copies_of_train"] / meta["counts"]["test"]
    text = f"{share:.1%} of the test images are exact copies of a training image"
    dropped = meta.get("dropped_as_repeats", {})
    if dropped:
        text += (
            " (frames repeating an earlier frame were dropped from every split: "
            + ", ".join(f"{count} {name}" for name, count in dropped.items())
            + ")"
        )
    return text + "."


DEFINITIONS_TEXT = f"""## How sample quality is measured

Every set of images is measured against the same test images, every set of a dataset at the
same size (`src/arbench/metrics/` defines each metric). Fidelity: **Fréchet** and **KID** (kernel
distance) in four feature spaces (*learned*: an autoencoder trained on the training images;
*contrastive*: a SimCLR encoder; *random*: the same shape untrained; *PCA*: 32 principal
components of the pixels), **precision** and **density** (k = 5 nearest neighbours, learned
features), and the **classifier accuracy** (a small network telling the set from test images,
{C2ST["folds"]}-fold cross-validated; 0.5: indistinguishable). Diversity: **recall** and
**coverage**; **NDB**, the share of k-means bins of the training pixels whose share of the set
differs from the training images' (two-proportion tests, Benjamini-Hochberg at 5%), and
**NDB JSD**, the Jensen-Shannon divergence of the two bin histograms (Richardson & Weiss 2018);
the **class histogram**, where labelled images exist: the total variation between the classes a
label classifier gives the set and the test images. Lower is better for distances, NDB and the
classifier; higher for precision, density, recall and coverage, up to real images' own.

**Errors.** A training run's value is the mean over its independent draws of samples; a
model's value is the mean over its training runs, and its error the larger of the spread between
runs and the spread within them. A difference between two models adds the variability of the
shared test images (both sets are measured against the same subsets of them). A check set's error
comes from subsets of three quarters of it (binomial for the classifier). The error-bar check
then compares each metric's error with the spread of independent draws: where the error is the
smaller (a ratio above 1), it is scaled up by the upper limit of the ratio's interval; where it is
the larger, it is kept, since a larger error only makes a test conservative; where it is 0 at a
boundary (coverage at 1, say), the draws' spread replaces it. A comparison's **detectable**
difference is the smallest it would find (two-sided at {LEVEL:.0%}, with {POWER:.0%} power) from
its errors and degrees of freedom: where it exceeds the margin, *equal within the margin* could
not have been shown.

**The metric check.** A metric is used in its part only where it ranks sets of known quality.
Fidelity: held-out real images ahead of one moment-matched Gaussian, blurred images (grey levels)
and real images with 30% noise; no noise level ahead of a lower one. Diversity: real images
without their smallest mode, and prototypes of a few k-means clusters, behind real images; no
noisy, outlier-laden or noisy-prototype set ahead of real. Both: training images read as
held-out real ones, and one Gaussian no better than training images. The primary metric of a
part separates its defining set (the Gaussian; the dropped mode) from real images by the most
standard errors; its margin is {MARGIN_SHARE:.0%} of that separation.
"""
# one line a paragraph: the report's length counts lines, and Markdown joins them anyway
DEFINITIONS = "\n\n".join(" ".join(p.split("\n")) for p in DEFINITIONS_TEXT.split("\n\n"))
