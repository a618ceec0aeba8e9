"""The report stage: likelihood table, figures and `report.md` from the evaluate outputs.

`python -m arbench.report --results results --plan '{"datasets": {...}, "skipped": {...}}'`
reads, for every dataset and model of the plan, `results/metrics/{dataset}/{model}.json` (+ .npz
of per-image NLLs), `results/samples/{dataset}/{model}.npz`, `results/models/{dataset}/
{model}.metrics.csv` and `results/data/{dataset}.npz`, and writes `results/likelihoods.csv`,
`results/figures/` and `results/report.md`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
from datetime import date
from pathlib import Path

import numpy as np

from arbench.data.format import atomic_write, load_dataset
from arbench.models import NEURAL
from arbench.plots import sample_panels, training_curves

log = logging.getLogger("arbench.report")

TABLE_FIELDS = [
    "dataset",
    "model",
    "nll_nats",
    "nll_nats_se",
    "bits_per_dim",
    "bits_per_dim_se",
    "likelihood",
    "test_images",
    "parameters",
    "train_seconds",
    "device",
]
AUTOREGRESSIVE = ("nade", "made")
MIXTURES = ("gmm", "mob")


def likelihood_rows(results: Path, datasets: dict[str, list[str]]) -> list[dict]:
    rows = []
    for dataset, models in datasets.items():
        for model in models:
            metrics = json.loads((results / "metrics" / dataset / f"{model}.json").read_text())
            rows.append(
                {
                    **{k: metrics.get(k) for k in TABLE_FIELDS},
                    "likelihood": "exact" if metrics["exact"] else "upper bound",
                }
            )
    return rows


def paired_differences(results: Path, dataset: str, models: list[str]) -> list[dict]:
    """NLL(a) - NLL(b) over the same test images, for each autoregressive vs mixture pair."""

    def nll(model):
        return np.load(results / "metrics" / dataset / f"{model}.npz")["nll"]

    pairs = []
    for a in (m for m in models if m in AUTOREGRESSIVE):
        for b in (m for m in models if m in MIXTURES):
            difference = nll(a) - nll(b)
            se = difference.std(ddof=1) / math.sqrt(len(difference))
            mean = float(difference.mean())
            pairs.append(
                {"a": a, "b": b, "mean": mean, "low": mean - 1.96 * se, "high": mean + 1.96 * se}
            )
    return pairs


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| model | NLL (nats/image) | bits/dim | likelihood | parameters | train time | device |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        seconds = f"{r['train_seconds']:.0f} s" if r["train_seconds"] is not None else ""
        lines.append(
            f"| {r['model']} | {r['nll_nats']:.2f} ± {r['nll_nats_se']:.2f} "
            f"| {r['bits_per_dim']:.4f} ± {r['bits_per_dim_se']:.4f} | {r['likelihood']} "
            f"| {r['parameters'] or '':,} | {seconds} | {r['device'] or ''} |"
        )
    return "\n".join(lines)


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


def build_report(results: Path, plan: dict) -> Path:
    datasets: dict[str, list[str]] = plan["datasets"]
    rows = likelihood_rows(results, datasets)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TABLE_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(results / "likelihoods.csv", lambda h: h.write(text.getvalue().encode()))

    out = [
        f"# arbench report\n\nGenerated {date.today().isoformat()}. The study asks whether "
        "autoregressive models (NADE, MADE) give richer samples than mixture models (GMM, "
        "mixture of Bernoullis). Test NLLs below are on each dataset's test split and "
        "discrete support; NADE, MADE and the mixture of Bernoullis are exact, the GMM's is "
        "the uniform-dequantization upper bound. ± is one standard error over test images.\n"
    ]
    for name, reason in plan.get("skipped", {}).items():
        out.append(f"> Dataset **{name}** was left out of this run: {reason}\n")
    for dataset, models in datasets.items():
        data = load_dataset(results / "data" / f"{dataset}.npz")
        shape = "x".join(str(s) for s in data.shape)
        out.append(
            f"## {dataset}\n\n{data.meta['source']}, {data.meta['counts']['train']} train "
            f"/ {data.meta['counts']['test']} test images of {shape}, {data.levels} levels.\n"
        )
        out.append(markdown_table([r for r in rows if r["dataset"] == dataset]) + "\n")
        bounds = {
            r["model"] for r in rows if r["dataset"] == dataset and r["likelihood"] != "exact"
        }
        pairs = paired_differences(results, dataset, models)
        if pairs:
            out.append("Paired differences on the same test images:\n")
            out.extend(describe_pair(p, p["b"] in bounds) for p in pairs)
            out.append("")
        samples = {
            m: np.load(results / "samples" / dataset / f"{m}.npz")["samples"] for m in models
        }
        figure = results / "figures" / f"{dataset}_samples"
        sample_panels(
            data.test, samples, data.levels, f"{dataset}: real test images and samples", figure
        )
        out.append(f"![{dataset} samples](figures/{figure.name}.png)\n")
        curves = {
            m: results / "models" / dataset / f"{m}.metrics.csv" for m in models if m in NEURAL
        }
        if curves:
            figure = results / "figures" / f"{dataset}_training"
            training_curves(curves, f"{dataset}: training curves", figure)
            out.append(f"![{dataset} training curves](figures/{figure.name}.png)\n")
    report = results / "report.md"
    atomic_write(report, lambda h: h.write("\n".join(out).encode()))
    log.info("wrote %s", report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Assemble the report from evaluate outputs.")
    parser.add_argument("--results", default="results")
    parser.add_argument(
        "--plan",
        required=True,
        help='JSON: {"datasets": {name: [models]}, "skipped": {name: reason}}',
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    build_report(Path(args.results), json.loads(args.plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
