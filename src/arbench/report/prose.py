"""The report's prose: what each number means and what it shows, in sentences built from the
numbers (paired differences, the classifier note, the resolving power, the verdict and its
shares, completion), and how sample quality is measured."""

from __future__ import annotations

from arbench.core.contracts import COMPLETION
from arbench.metrics.measures import C2ST
from arbench.metrics.verdict import RESAMPLES
from arbench.report.tables import comparison_rows, matrix_table, paired_differences


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


def verdict_section(dataset: str, found: dict) -> str:
    """What was declared from the metric check, the primary pair's comparison part by part, the
    family matrix and the family's answer (`arbench.metrics.verdict.answer`)."""
    out = []
    declared = ", ".join(
        f"{part}: **{chosen['primary'] or 'none passes its checks'}**"
        + (f" (margin {chosen['margin']:.3g})" if chosen["primary"] else "")
        for part, chosen in found["declared"].items()
    )
    out.append(f"Declared from the metric check before any comparison: {declared}.\n")
    pair = found["primary_pair"]
    if pair:
        a, b = pair["pair"]
        out.append(
            f"**The primary pair, {a} against {b}: {pair['outcome']}** "
            f"({pair['agreement']['share']:.0%} of {RESAMPLES} resamples of seeds and draws "
            f"give {pair['agreement']['majority']}).\n"
        )
        out.append(comparison_rows(pair["parts"]) + "\n")
        for part, part_found in pair["parts"].items():
            if part_found["disagree"]:
                out.append(
                    f"In {part}, {', '.join(part_found['disagree'])} disagree with the primary "
                    "metric's finding.\n"
                )
    family = found["family"]
    text = f"**The family answer: {family['outcome']}**"
    if family["differing"]:
        text += f" (most pairs: {family['most_common']}; the pairs that differ: " + "; ".join(
            f"{a} against {b}: {o}" for a, b, o in family["differing"]
        ) + ")"
    out.append(text + ".\n")
    if found["matrix"]:
        out.append(
            "Every autoregressive model against every mixture (each model's training runs "
            "pooled):\n\n" + matrix_table(found["matrix"]) + "\n"
        )
    return "\n".join(out)


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
    dropped = meta.get("dropped_as_repeats", {})
    if dropped:
        text += (
            " (frames repeating an earlier frame were dropped from every split: "
            + ", ".join(f"{count} {name}" for name, count in dropped.items())
            + ")"
        )
    return text + "."


DEFINITIONS = f"""## How sample quality is measured

Every set of images is measured the same way, against the same test images, every set at the
same size (`src/arbench/metrics/` defines each metric):

- **Fréchet** and **KID**: Fréchet distance and kernel inception distance (unbiased, cubic
  kernel; may be slightly negative) between the set's features and the test images', in four
  feature spaces: *learned* (a small autoencoder trained on the training images, also to tell
  the labels apart where there are labels), *contrastive* (an encoder of the same shape trained
  self-supervised, SimCLR), *random* (the same shape at random weights) and *PCA* (the top 32
  principal components of the training pixels). Lower is closer. Fidelity.
- **precision** and **density** (fidelity), **recall** and **coverage** (diversity): k = 5
  nearest neighbours in the learned features. Higher is better, up to real images' own.
- **classifier accuracy**: a small network trained to tell the set from as many test images,
  cross-validated in {C2ST["folds"]} folds: 0.5 when it cannot tell them apart. Fidelity.
- **NDB** and **NDB JSD** (diversity): the training pixels binned by k-means; the share of bins
  whose proportion in the set differs from the training images' (two-proportion z-tests,
  Benjamini-Hochberg at 5% over the bins), and the Jensen-Shannon divergence between the two bin
  histograms (Richardson & Weiss 2018). Lower is better.
- **class histogram** (diversity, where labelled images exist): the total variation distance
  between the classes a label classifier gives the set and those it gives the test images.
- **novelty**: RMS pixel distance from each image to its nearest training image; **copies**: the
  share of exact training images. They describe.
- A model's value is the mean over its independent draws of samples and its training runs; ±
  is its standard error (the spread of the draws and of the runs). A check set's ± is from
  subsets of three quarters of the set (the delete-d jackknife), binomial for the classifier,
  as the error-bar check calibrated it.

**The metric check.** A metric is used in its part only where it ranks sets whose order is known.
Fidelity: held-out real images ahead of one moment-matched Gaussian, of 3x3-blurred images (grey
levels) and of real images with 30% noise; no noise level ahead of a lower one. Diversity: real
images without their largest mode, and real images replaced by the prototypes of a few k-means
clusters, behind real images; no noisy, outlier-laden or noisy-prototype set ahead of real
images. Both: training images read as held-out real ones, and one Gaussian no better than
training images (a reference the sets are exchangeable with).
"""
