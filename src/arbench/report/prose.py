"""The report's prose: what each number means and what it shows, in sentences built from the
numbers (paired differences, the classifier note, the resolving power, the verdict and its
shares, completion), and how sample quality is measured."""

from __future__ import annotations

import numpy as np

from arbench.core.contracts import COMPLETION
from arbench.core.plan import PARTS
from arbench.metrics.known_answers import GAUSSIAN, RESOLVING_METRICS, RESOLVING_SES, trails_by
from arbench.metrics.measures import C2ST
from arbench.metrics.verdict import (
    RESAMPLES,
    SHARE,
    describe_part,
    headline,
    pair_matrix,
    resampled,
    verdict,
    voting_parts,
)
from arbench.report.tables import evidence_table, matrix_table, paired_differences, shares_text


def describe_pair(pair: dict, bound_b: bool) -> str:
    """What a paired difference shows. B's exact NLL is at most its bound, so a model worse than
    B's bound is worse than B, while one better than B's bound may or may not beat B."""
    a, b = pair["a"].upper(), pair["b"].upper()
    interval = f"{pair['mean']:+.2f} nats/image (95% CI {pair['low']:+.2f} to {pair['high']:+.2f})"
    if pair["high"] < 0 and not bound_b:
        verdict = f"{a} gives the test images a higher likelihood than {b}"
    elif pair["high"] < 0:
        verdict = (
            f"{a} is below {b}'s upper bound; {b}'s exact NLL may be lower still, "
            "so this alone does not rank them"
        )
    elif pair["low"] > 0:
        verdict = f"{b} gives the test images a higher likelihood than {a}"
        if bound_b:
            verdict += " (already by its upper bound, so surely by its exact NLL)"
    else:
        verdict = "the difference is not resolved at this number of test images"
    label = f"{b} bound" if bound_b else b
    return f"- NLL({a}) − NLL({label}) = {interval}: {verdict}."


def drift(found: dict, test: dict) -> float:
    """How far a set's per-channel mean and spread lie from the test images', in levels."""
    pairs = [*zip(found["channel_mean"], test["channel_mean"], strict=True)]
    pairs += [*zip(found["channel_sd"], test["channel_sd"], strict=True)]
    return float(np.mean([abs(a - b) for a, b in pairs]))


def classifier_note(check: dict, votes: list[str], measured: dict[str, dict], test: dict) -> str:
    """Where one Gaussian is told from real images less often than every model: the numbers,
    and where the classifier votes. A moment-matched Gaussian has the real images' mean and
    spread of every pixel by construction; how far each set's lie from the test images' is
    given beside each set's accuracy, not as its cause."""
    gaussian = check["sets"][GAUSSIAN]
    if not measured or not all(
        gaussian["c2st_accuracy"]["value"] < found["c2st_accuracy"]["value"]
        for found in measured.values()
    ):
        return ""
    closest = min(measured, key=lambda m: measured[m]["c2st_accuracy"]["value"])
    beside = ", ".join(
        f"{m} {drift(found['pixels'], test):.1f} levels off, told apart "
        f"{found['c2st_accuracy']['value']:.1%} of the time"
        for m, found in sorted(measured.items(), key=lambda item: drift(item[1]["pixels"], test))
    )
    where = (
        f"it votes here in {', '.join(votes)}"
        if votes
        else "it does not vote here (see the check table for why)"
    )
    return (
        f"One Gaussian is told from real images less often by the classifier "
        f"({gaussian['c2st_accuracy']['value']:.3f}) than any model's samples (the closest: "
        f"{closest}, {measured[closest]['c2st_accuracy']['value']:.3f}); {where}. The Gaussian "
        "reproduces the mean and spread of every pixel of the training images by construction: "
        f"its per-channel mean level and spread lie {drift(gaussian['pixels'], test):.1f} levels "
        f"from the test images' on average; the models': {beside}. How far a set's pixel "
        "statistics drift does not order how often it is caught, so the classifier sees more "
        "than brightness and contrast (table below).\n"
    )


def resolving_sentence(check: dict, errors: dict) -> str:
    """By how many standard errors one Gaussian trails real images at this set size."""
    votes = voting_parts(check, errors)
    right = [
        m
        for m in check["metrics"]
        if check["metrics"][m]["sound"] and errors["metrics"][m]["within"]
    ]
    if not right:
        return (
            f"No metric ranked the known sets right with a checked error bar at "
            f"{check['images_per_set']} images a set."
        )
    shown = ", ".join(f"{m} {trails_by(m, check['sets']):.1f}" for m in right)
    voting = [m for m in votes if votes[m]]
    verdict = (
        "enough to resolve the question"
        if len(voting) >= RESOLVING_METRICS
        else f"**too few to resolve the question at this size** ({RESOLVING_METRICS} metrics "
        f"beyond {RESOLVING_SES:g} standard errors are needed)"
    )
    return (
        f"Resolving power at {check['images_per_set']} images a set: on the metrics that rank "
        f"the known sets right with a checked error bar, one Gaussian trails the real images by "
        f"{shown} standard errors (a metric votes beyond {RESOLVING_SES:g}); {len(voting)} vote: "
        f"{verdict}."
    )


def verdict_section(
    dataset: str,
    judged: dict[str, dict],
    selection: dict[str, dict],
    check: dict,
    errors: dict,
    unfinished: dict[str, dict | None],
) -> tuple[str, dict]:
    """The evidence table, the finding of each part, the verdict by
    `arbench.metrics.verdict.RULE` with how often it comes out over resamples, and the matrix of
    every pair of training runs; returns the section and the headline."""
    rows, decided = verdict(judged, selection, check, errors, unfinished)
    found = resampled(judged, selection, check, errors, unfinished)
    outcome = headline(found)
    parts = []
    if rows and "favours" in rows[0]:
        parts.append(
            f"Each family's representative, chosen on the draw of samples kept for the choice "
            f"(the model best by the most voting metrics there): **{rows[0]['autoregressive']}** "
            f"and **{rows[0]['mixture']}**, compared here on another, independent draw (the one "
            "the tables show); values read against the real images' own (a value better than "
            "real counts as real's):\n"
        )
        parts.append(evidence_table(rows) + "\n")
        parts.append(
            "\n".join(
                f"- **{part}**: {describe_part(part, decided['parts'][part])}." for part in PARTS
            )
            + "\n"
        )
    parts.append(f"On the draws as measured: **{decided['outcome']}** — {decided['reason']}.\n")
    parts.append(
        f"**Verdict on {dataset}: {outcome}** ({shares_text(found)} of {RESAMPLES} resamples of "
        f"the draws, the seeds and the images; a verdict needs {SHARE:.0%}).\n"
    )
    matrix = pair_matrix(judged, selection, check, errors, unfinished)
    if matrix:
        parts.append(
            "Every autoregressive training run against every mixture run, compared on the shown "
            "draw without choosing representatives (the share of resamples that gives the same "
            "outcome in brackets):\n\n" + matrix_table(matrix) + "\n"
        )
    return "\n".join(parts), {
        "outcome": outcome,
        "shares": found,
        "as_measured": decided,
        "matrix": matrix,
    }


def completion_section(files: dict[str, dict], filled: dict[str, dict]) -> str:
    """The conditional NLL of the hidden rows per model, and paired differences."""
    summaries = {m: COMPLETION.read(f["completion"]) for m, f in files.items()}
    first = next(iter(summaries.values()))
    lines = [
        f"Completion: the bottom {first['hidden_rows']:.0%} of the rows of every test image "
        f"hidden ({first['hidden_pixels']} values), the rest given. Conditional NLL of the true "
        "hidden values, nats/image:\n",
        "| model | conditional NLL | likelihood |",
        "| --- | --- | --- |",
    ]
    for model, summary in summaries.items():
        lines.append(
            f"| {model} | {summary['conditional_nll_nats']:.2f} ± "
            f"{summary['conditional_nll_nats_se']:.2f} | {summary['likelihood']} |"
        )
    lines.append("")
    estimates = {m for m, summary in summaries.items() if summary["likelihood"] != "exact"}

    nlls = {m: found["nll"] for m, found in filled.items()}
    for pair in paired_differences(nlls):
        note = " (an estimate, not exact: compare with care)" if pair["b"] in estimates else ""
        lines.append(
            f"- {pair['a'].upper()} − {pair['b'].upper()} = {pair['mean']:+.2f} ± "
            f"{pair['se']:.2f} nats/image on the same test images{note}."
        )
    return "\n".join(lines) + "\n"


def copies_sentence(meta: dict) -> str:
    """What share of the test images are exact copies of training images (from the sidecar)."""
    counts = meta.get("duplicates", {}).get("test")
    if counts is None:
        return ""
    share = counts["copies_of_train"] / meta["counts"]["test"]
    text = f"{share:.1%} of the test images are exact copies of a training image"
    dropped = meta.get("dropped_as_copies_of_train", {}).get("test")
    if dropped:
        text += f" ({dropped} such copies were dropped from the test split)"
    return text + "."


DEFINITIONS = f"""## How sample quality is measured

The same measurements for every set of images (`src/arbench/quality.py` defines each), all against
the same test images, every set at the same size:

- **Fréchet** and **KID**: Fréchet distance and kernel inception distance (unbiased, cubic
  kernel; may be slightly negative) between the set's features and the test images' features, in
  four feature spaces: *learned*, a small convolutional autoencoder trained on the dataset's
  training images (also to tell the labels apart where there are labels); *contrastive*, an
  encoder of the same shape trained on them self-supervised, to match two augmented views of an
  image (SimCLR: crops, mirroring where the data allow it, colour jitter); *random*, the same shape
  left at random weights; and *PCA*, the top 32 principal components of the training pixels.
  Lower is closer.
- **precision** and **density**: how much of the set lies where test images are (fidelity);
  **recall** and **coverage**: how much of where test images are the set reaches (diversity);
  k = 5 nearest neighbours in the learned features. Higher is better, up to real images' own.
- **classifier accuracy**: a small convolutional network trained to tell the set from as many
  test images, cross-validated in {C2ST["folds"]} folds, the same network and budget for every
  set: 0.5 when it cannot tell them apart, 1 when it always can. It sees fidelity and diversity
  at once, and votes in each part whose checks it passes. Lower is better.
- **novelty**: RMS pixel distance from each image to its nearest training image; **copies**: the
  share of exact training images. They describe; they do not vote.
- ± is a standard error, what another draw of the set would give against the same test images:
  from random subsets of three quarters of the set (their spread times sqrt(3), the delete-d
  jackknife) for the distances and k-NN measures, binomial for the classifier. The error-bar
  check compares each with the spread of at least 20 independent draws of a set from a trained
  network and from the real images; a metric whose error is off by more than the check's
  tolerance does not vote.
- Every model draws two independent sample sets, measured alike: the tables show the first; the
  verdict chooses each family's representative on the second and compares the two on the first.

**The metric check.** Before a metric may vote in a part of the hypothesis on a dataset it must
rank sets whose order is known for that part. Fidelity: held-out real images (valid split)
first; one Gaussian fitted to the training pixels (moment-matched), the real images blurred over
3x3 pixels (grey-level data), and real images with 5%, 15% and 30% of their pixels replaced by
noise behind them, no noise level ahead of a lower one, and for the classifier all of these with
a second classifier seed too. Diversity: real images without their largest mode (a label, or a
k-means cluster of the pixels: outside every feature space the metrics use) and real images each
replaced by the prototype of its nearest of a few k-means clusters of the training pixels behind
real images; and no set known to fool a diversity metric ahead of real images: the noisy sets,
real images with a fifth replaced by one-Gaussian draws or by noise images (outliers widen k-NN
balls), and as many prototypes as the largest mixture has components, drawn with per-pixel
noise. Every metric must also put one Gaussian more than {RESOLVING_SES:g} standard errors behind
real images at this set size. A fidelity metric may score the prototypes beyond real images
(samples piled on dense places look "more precise" than real): the verdict reads every value
against the real images' own, so that gains nothing. Features are divided by the spread of the
test images' features in their space, so every space's distances are in the same units.
"""
