"""Publish a finished study run (`config/study.yaml`) into the repository: the report, its figures
as PNG, the likelihood and sample-quality tables, the config it ran with, what the run cost
(commit, wall time, peak memory, seconds per stage from Snakemake's benchmark files), the
previous answer beside the new one, and the trained models with their cards.

    python bench/publish_study.py --run DIR --log RUN_LOG --commit SHA --changes CHANGES.json \
        --out docs/study

DIR is the directory the study ran in (its `results/`); RUN_LOG is what `/usr/bin/time -f "%e s
wall, %M KB max RSS" snakemake ...` printed, whose last such line gives the wall time and peak
memory. CHANGES.json maps each dataset to what moved its verdict since the answer published in
OUT before (the change of rule or instrument), so that no change of answer is silent.

Models: each model's first training run goes to `OUT/models/{dataset}/{model}.pt`, smallest
first, while they total at most `MODEL_BUDGET` bytes; each has a card beside it (`.json`, see
`arbench.trained`), and a model that does not fit gets a card saying how to make it. A card's
`check` is the NLL of the stored weights on fixed images a test can rebuild (`../shared/data`, or
Atari frames generated again).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

# how reports before the verdict's resampling wrote it (the previous answer may be one of them)
OLD_VERDICT = re.compile(r"^\*\*Verdict on (\w+): ([a-z ]+)\*\* — (.*)$", re.MULTILINE)
MODEL_BUDGET = 50 * 2**20
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHECK_IMAGES = 500
OWN_COUNT = "the training's own count"
# Per dataset source: the fixed images a card's NLL is reproduced on (arbench.trained.check_images)
CHECKS = {
    "binarized_mnist": {
        "kind": "amat",
        "file": "binarized_mnist/binarized_mnist_valid.amat.gz",
        "what": "the first 500 images of the standard binarized MNIST's valid split",
    },
    "anime_faces": {
        "kind": "archive",
        "file": "anime_faces/anime_faces_96px_2000.zip",
        "what": "the first 500 faces of the 2,000-face archive, preprocessed as the dataset",
    },
    "atari": {
        "kind": "generated",
        "spec": {"frames": 800},
        "what": "the test split of the dataset's spec generated again with 800 frames",
    },
}


def stage_seconds(results: Path) -> dict[str, dict]:
    """Per stage: jobs, the sum of their wall seconds and the slowest job."""
    stages: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        with open(tsv, newline="") as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        stage = tsv.relative_to(results / "benchmarks").parts[0]
        stage = stage.removesuffix(".tsv")
        name = tsv.relative_to(results / "benchmarks").with_suffix("").as_posix()
        stages[stage].append((float(row["s"]), name))
    return {
        stage: {
            "jobs": len(jobs),
            "seconds": round(sum(s for s, _ in jobs), 1),
            "slowest": max(jobs)[1],
            "slowest_seconds": round(max(jobs)[0], 1),
        }
        for stage, jobs in sorted(stages.items(), key=lambda item: -sum(s for s, _ in item[1]))
    }


SNAKEMAKE_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]{8} \d{4})\]$", re.MULTILINE)


def wall_and_memory(logs: list[Path]) -> tuple[float, float, list[str]]:
    """The run's wall time, summed over its segments (a run a session end stopped and the same
    command resumed: one log each), its peak memory, the largest of theirs, and a note for each
    segment stopped from outside before /usr/bin/time could print: that segment is timed from its
    Snakemake log's first to last timestamp, a lower bound, and its peak memory is unknown."""
    seconds, kilobytes, notes = 0.0, 0, []
    for log in logs:
        text = log.read_text()
        found = re.findall(r"([\d.]+) s wall, (\d+) KB max RSS", text)
        if found:
            seconds += float(found[-1][0])
            kilobytes = max(kilobytes, int(found[-1][1]))
            continue
        stamps = [
            datetime.strptime(s, "%a %b %d %H:%M:%S %Y") for s in SNAKEMAKE_STAMP.findall(text)
        ]
        if len(stamps) < 2:
            raise SystemExit(
                f"{log} has neither /usr/bin/time's '... s wall, ... KB max RSS' line nor "
                "Snakemake's timestamps to time it by"
            )
        lasted = (stamps[-1] - stamps[0]).total_seconds()
        seconds += lasted
        notes.append(
            f"{log.name}: stopped from outside before /usr/bin/time printed; {lasted:,.0f} s "
            f"from its first to its last Snakemake timestamp ({stamps[0]:%H:%M:%S} to "
            f"{stamps[-1]:%H:%M:%S}), a lower bound, its peak memory unknown"
        )
    return seconds, kilobytes / 2**20, notes


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def answer_of(found: dict) -> str:
    """A dataset's published answer, as verdicts files of every version wrote it: the original
    study's pair and every pair of the families (now), or one verdict (before)."""
    if "outcome" in found:
        return found["outcome"]
    pair = found["primary_pair"]
    first = pair["outcome"] if pair else "not compared"
    return f"{first}; every pair: {found['family']['outcome']}"


def answer_table(verdicts: dict[str, dict]) -> str:
    lines = [
        "| dataset | the original study's pair (MADE against the PCA-GMM) | share of resamples "
        "agreeing | every autoregressive model against every mixture |",
        "| --- | --- | --- | --- |",
    ]
    for dataset, found in sorted(verdicts.items()):
        pair, family = found["primary_pair"], found["family"]
        agreed = pair["agreement"] if pair else None
        differing = "; ".join(f"{a} against {b}: {o}" for a, b, o in family["differing"])
        lines.append(
            f"| {dataset} | **{pair['outcome'] if pair else 'not compared'}** | "
            + (f"{agreed['share']:.0%} say {agreed['majority']}" if agreed else "")
            + f" | **{family['outcome']}**"
            + (f" (differing: {differing})" if differing else "")
            + " |"
        )
    return "\n".join(lines)


def previous_answer(out: Path) -> tuple[dict[str, str], str]:
    """The answers published in `out` before (from their verdicts file, or read off a report
    written before there was one), and the commit they came from."""
    if not (out / "report.md").exists():
        return {}, ""
    if (out / "verdicts.json").exists():
        found = json.loads((out / "verdicts.json").read_text())
        verdicts = {d: answer_of(v) for d, v in found.items()}
    else:
        verdicts = {d: o for d, o, _ in OLD_VERDICT.findall((out / "report.md").read_text())}
    return verdicts, json.loads((out / "run.json").read_text())["commit"]


def changes_table(previous: dict, commit: str, verdicts: dict[str, dict], changes: dict) -> list:
    lines = [
        "## The previous answer",
        "",
        f"The answer published before, from commit `{commit[:7]}`, beside this one, and the change "
        "of rule or instrument that moved it:",
        "",
        "| dataset | previous answer | new answer | what moved it |",
        "| --- | --- | --- | --- |",
    ]
    for dataset, found in sorted(verdicts.items()):
        before = previous.get(dataset, "not run")
        lines.append(f"| {dataset} | **{before}** | **{answer_of(found)}** | {changes[dataset]} |")
    return lines


def training_seconds(metrics: dict, curve: Path) -> tuple[float, str]:
    """A training's seconds and how they were counted. Before 8b2c934 a resumed training's
    summary counted its last process only; its curve's epochs (validation excluded) hold more."""
    counted = metrics["train_seconds"]
    if not (metrics.get("training") or {}).get("resumed") or not curve.exists():
        return counted, OWN_COUNT
    from arbench.core.contracts import CURVE

    epochs = sum(float(row["seconds"]) for row in CURVE.read(curve))
    if epochs <= counted:
        return counted, OWN_COUNT
    return epochs, (
        "the sum of its epochs' training seconds (validation excluded): resumed, and its code "
        "counted the last process only"
    )


def model_card(results: Path, dataset: str, run: str, commit: str) -> dict:
    import numpy as np

    from arbench.data.format import load_dataset
    from arbench.trained import TrainedModel, check_images
    from arbench.training.checkpoints import load_model

    data = load_dataset(results / "data" / f"{dataset}.npz")
    metrics = json.loads((results / "metrics" / dataset / f"{run}.json").read_text())
    path = results / "models" / dataset / f"{run}.pt"
    saved = load_model(path)
    spec = data.meta["spec"]
    card = {
        "model": saved.name,
        "run": run,
        "dataset": {
            "name": dataset,
            "spec": spec,
            "shape": list(data.shape),
            "levels": data.levels,
            "counts": data.meta["counts"],
            "content_sha256": data.meta["content_sha256"],
        },
        "settings": saved.config,
        "seed": saved.config.get("seed"),
        "test_nll": {
            "nats": metrics["nll_nats"],
            "se": metrics["nll_nats_se"],
            "bits_per_dim": metrics["bits_per_dim"],
            "likelihood": "exact" if metrics["exact"] else "upper bound",
            "images": metrics["test_images"],
        },
        "training": {
            "device": metrics["device"],
            **(metrics.get("training") or {}),
        },
        "commit": commit,
        "make": (
            "snakemake --cores all --configfile config/study.yaml "
            f"results/models/{dataset}/{run}.pt (at commit {commit[:7]}; see docs/study/README.md)"
        ),
    }
    curve = results / "models" / dataset / f"{run}.metrics.csv"
    card["training"]["seconds"], card["training"]["seconds_counted_as"] = training_seconds(
        metrics, curve
    )
    check = {**CHECKS[spec["source"]], "count": CHECK_IMAGES}
    card["check"] = check
    nll = -TrainedModel(saved, card, path).log_prob(check_images(card, SHARED))
    check.update(
        count=len(nll),  # a generated test split can hold fewer than CHECK_IMAGES
        nll_nats=float(nll.mean()),
        nll_nats_se=float(nll.std(ddof=1) / np.sqrt(len(nll))),
    )
    return card


def publish_models(results: Path, out: Path, commit: str) -> list[dict]:
    """The first training run of every model, with its card, smallest first within the budget."""
    from arbench.core.plan import replicate_of
    from arbench.data.download import file_digest

    runs = sorted(
        (path.stat().st_size, path.parent.name, path.stem)
        for path in (results / "models").glob("*/*.pt")
        if replicate_of(path.stem)[1] == 0
    )
    published, total = [], 0
    for size, dataset, run in runs:
        card = model_card(results, dataset, run, commit)
        folder = out / "models" / dataset
        folder.mkdir(parents=True, exist_ok=True)
        source = results / "models" / dataset / f"{run}.pt"
        fits = total + size <= MODEL_BUDGET
        card["file"] = {"name": f"{run}.pt", "bytes": size, "sha256": file_digest(source)}
        card["file"]["dtype"] = "float32 (as trained)"
        card["published"] = fits
        if fits:
            shutil.copy2(source, folder / f"{run}.pt")
            total += size
        (folder / f"{run}.json").write_text(json.dumps(card, indent=2) + "\n")
        published.append(card)
    return published


def models_table(cards: list[dict]) -> list[str]:
    lines = [
        "## The trained models",
        "",
        "In [models/](models/), each with its card (`.json`: dataset and preprocessing, settings, "
        "test NLL, how training ended, commit, sha256, and the NLL of the stored weights on fixed "
        'images a test rebuilds). `arbench.load(path)` loads one (README.md, "Use the trained '
        'models"). Those over the size budget are not published; their card says how to make '
        "them.",
        "",
        "| dataset | model | test NLL (nats) | file size | published |",
        "| --- | --- | --- | --- | --- |",
    ]
    for card in sorted(cards, key=lambda c: (c["dataset"]["name"], c["model"])):
        nll = card["test_nll"]
        lines.append(
            f"| {card['dataset']['name']} | {card['model']} | {nll['nats']:,.2f} ± {nll['se']:.2f} "
            f"({nll['likelihood']}) | {card['file']['bytes'] / 2**20:.2f} MB | "
            f"{'yes' if card['published'] else 'no: ' + card['make']} |"
        )
    recounted = [c for c in cards if c["training"]["seconds_counted_as"] != OWN_COUNT]
    if recounted:
        lines += [
            "",
            "The report's training times of "
            + ", ".join(f"{c['dataset']['name']} {c['run']}" for c in recounted)
            + " count only the last process of a resumed training (the code before 8b2c934); "
            "their cards give the sum of their epochs' training seconds instead: "
            + ", ".join(f"{c['training']['seconds']:,.0f} s" for c in recounted)
            + ".",
        ]
    return lines


def publish(
    run: Path,
    logs: list[Path],
    commit: str,
    out: Path,
    changes: dict,
    report_commit: str = "",
    before: Path | None = None,
) -> dict:
    """Publish the study that ran in `run` at `commit` into `out`, beside the answer published
    before it: `before`'s (a published study's folder), or else `out`'s own."""
    results = run / "results"
    config = run / "config" / "study.yaml"  # what ran, not what the checkout holds now
    previous, previous_commit = previous_answer(before or out)
    if previous_commit == commit:
        raise SystemExit(
            f"{before or out} already holds the run of {commit[:7]}: its answer is not the "
            "previous one. Pass --previous with the study published before it (for example "
            "`git archive <commit> docs/study | tar -x -C /tmp/previous`)."
        )
    if out.exists():
        shutil.rmtree(out)
    (out / "figures").mkdir(parents=True)
    report = (results / "report.md").read_text()
    (out / "report.md").write_text(report)
    for figure in sorted((results / "figures").glob("*.png")):
        shutil.copy2(figure, out / "figures" / figure.name)
    for table in ("likelihoods.csv", "sample_quality.csv", "verdicts.json"):
        shutil.copy2(results / table, out / table)
    # the metric check and the error calibration each verdict rests on, per dataset
    (out / "checks").mkdir()
    for check in sorted((results / "checks").glob("*.json")):
        shutil.copy2(check, out / "checks" / check.name)
    verdicts = json.loads((results / "verdicts.json").read_text())
    shutil.copy2(config, out / "config.yaml")
    seconds, gigabytes, untimed = wall_and_memory(logs)
    stages = stage_seconds(results)
    run_record = {
        "commit": commit,
        "config": "config/study.yaml",
        # the day the run ended (its last segment's log last written), not the day of publishing
        "date": datetime.fromtimestamp(logs[-1].stat().st_mtime, UTC).date().isoformat(),
        "machine": f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores",
        "wall_seconds": seconds,
        "segments": len(logs),
        "segments_timed_from_their_logs": untimed,
        "peak_memory_gb": round(gigabytes, 2),
        "stages": stages,
        # the report made again from these results by the report job alone, at a later commit
        "report_commit": report_commit or commit,
    }
    (out / "run.json").write_text(json.dumps(run_record, indent=2) + "\n")
    lines = [
        "# The study run",
        "",
        f"`snakemake --cores all --configfile config/study.yaml` from nothing (no `results/`, no "
        f"`.snakemake/`) at commit `{commit}`, {run_record['date']}, on {run_record['machine']}, "
        'no GPU, the data placed under `resources/` as the README\'s "Without network" says.',
        "",
        f"- wall time: **{seconds:,.0f} s ({seconds / 60:.1f} min)**"
        + (
            f", the sum of {len(logs)} segments (stopped by Ctrl-C while a benchmark needed the "
            "machine, or by a session's end, and resumed by the same command with "
            "`--rerun-incomplete`; trainings resume from their checkpoints)"
            if len(logs) > 1
            else ""
        )
        + f"; peak memory {gigabytes:.2f} GB"
        + "".join(f"\n  - {note}" for note in untimed),
        *(
            [
                f"- the report made again from these results by the report job alone (no model "
                f"trained or measured again) at commit `{report_commit}`, whose report code is "
                "newer than the run's"
            ]
            if report_commit and report_commit != commit
            else []
        ),
        "- the report: [report.md](report.md); tables: [likelihoods.csv](likelihoods.csv), "
        "[sample_quality.csv](sample_quality.csv) (every draw of every training run, and the check "
        "sets), [checks/](checks/) (per dataset the metric check and the error calibration), "
        "[verdicts.json](verdicts.json) (per dataset what the metric check declared, the "
        "original study's pair part by part, every pair of the two families with its agreement "
        "over resamples, every model's values); the config it ran: [config.yaml](config.yaml) "
        "(`config/study.yaml`, kept equal by `tests/test_published_study.py`)",
        "",
        "| stage | jobs | seconds, all jobs | slowest job |",
        "| --- | --- | --- | --- |",
    ]
    for stage, row in stages.items():
        lines.append(
            f"| {stage} | {row['jobs']} | {row['seconds']:,.1f} | {row['slowest']} "
            f"({row['slowest_seconds']:,.1f} s) |"
        )
    if len(logs) > 1:
        lines += [
            "",
            "Snakemake rewrites a job's benchmark file each time the job runs: a training resumed "
            "in a later segment counts only that segment's seconds here.",
        ]
    lines += ["", "## The answer", "", answer_table(verdicts), ""]
    if previous:
        lines += [*changes_table(previous, previous_commit, verdicts, changes), ""]
    lines += [*models_table(publish_models(results, out, commit)), ""]
    (out / "README.md").write_text("\n".join(lines))
    return run_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="the directory the study ran in")
    parser.add_argument(
        "--log",
        required=True,
        type=Path,
        nargs="+",
        help="the run's log with /usr/bin/time's line; one per segment of a resumed run",
    )
    parser.add_argument("--commit", required=True)
    parser.add_argument(
        "--report-commit",
        default="",
        help="the commit whose report code made results/report.md again from the run's results, "
        "where a later one than --commit",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/study"))
    parser.add_argument(
        "--previous",
        type=Path,
        help="the folder of the study published before this run, where --out already holds this "
        "run (a report made again): its answer is the previous one",
    )
    parser.add_argument(
        "--changes",
        type=Path,
        required=True,
        help="JSON: dataset -> what moved its verdict since the published answer",
    )
    args = parser.parse_args()
    changes = json.loads(args.changes.read_text())
    record = publish(
        args.run, args.log, args.commit, args.out, changes, args.report_commit, args.previous
    )
    print(json.dumps(record, indent=2))
    print(answer_table(json.loads((args.out / "verdicts.json").read_text())))


if __name__ == "__main__":
    main()
