"""Publish a finished study run (`config/study.yaml`) into the repository: the report, its figures
as PNG, the likelihood and sample-quality tables, the config it ran with, and what the run cost
(commit, wall time, peak memory, seconds per stage from Snakemake's benchmark files).

    python bench/publish_study.py --run DIR --log RUN_LOG --commit SHA --out docs/study

DIR is the directory the study ran in (its `results/`); RUN_LOG is what `/usr/bin/time -f "%e s
wall, %M KB max RSS" snakemake ...` printed, whose last such line gives the wall time and peak
memory. Also prints the README's answer table (the verdict per dataset and the metrics that
decided it).
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
from datetime import date
from pathlib import Path

VERDICT = re.compile(r"^\*\*Verdict on (\w+): ([a-z ]+)\*\* — (.*)$", re.MULTILINE)


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


def wall_and_memory(log: Path) -> tuple[float, float]:
    found = re.findall(r"([\d.]+) s wall, (\d+) KB max RSS", log.read_text())
    if not found:
        raise SystemExit(f"{log} has no '... s wall, ... KB max RSS' line from /usr/bin/time")
    seconds, kilobytes = found[-1]
    return float(seconds), int(kilobytes) / 2**20


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def answer_table(report: str) -> str:
    lines = ["| dataset | verdict | why |", "| --- | --- | --- |"]
    for dataset, outcome, reason in VERDICT.findall(report):
        lines.append(f"| {dataset} | **{outcome}** | {reason} |")
    return "\n".join(lines)


def publish(run: Path, log: Path, commit: str, out: Path) -> dict:
    results = run / "results"
    config = run / "config" / "study.yaml"  # what ran, not what the checkout holds now
    if out.exists():
        shutil.rmtree(out)
    (out / "figures").mkdir(parents=True)
    report = (results / "report.md").read_text()
    (out / "report.md").write_text(report)
    for figure in sorted((results / "figures").glob("*.png")):
        shutil.copy2(figure, out / "figures" / figure.name)
    for table in ("likelihoods.csv", "sample_quality.csv"):
        shutil.copy2(results / table, out / table)
    shutil.copy2(config, out / "config.yaml")
    seconds, gigabytes = wall_and_memory(log)
    stages = stage_seconds(results)
    run_record = {
        "commit": commit,
        "config": "config/study.yaml",
        "date": date.today().isoformat(),
        "machine": f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores",
        "wall_seconds": seconds,
        "peak_memory_gb": round(gigabytes, 2),
        "stages": stages,
    }
    (out / "run.json").write_text(json.dumps(run_record, indent=2) + "\n")
    lines = [
        "# The study run",
        "",
        f"`snakemake --cores all --configfile config/study.yaml` from nothing (no `results/`, no "
        f"`.snakemake/`) at commit `{commit}`, {run_record['date']}, on {run_record['machine']}, "
        'no GPU, the data placed under `resources/` as the README\'s "Without network" says.',
        "",
        f"- wall time: **{seconds:,.0f} s ({seconds / 60:.1f} min)**; peak memory "
        f"{gigabytes:.2f} GB",
        "- the report: [report.md](report.md); tables: [likelihoods.csv](likelihoods.csv), "
        "[sample_quality.csv](sample_quality.csv); the config it ran: [config.yaml](config.yaml) "
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
    lines += ["", "## The answer", "", answer_table(report), ""]
    (out / "README.md").write_text("\n".join(lines))
    return run_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="the directory the study ran in")
    parser.add_argument("--log", required=True, type=Path, help="the run's log, with /usr/bin/time")
    parser.add_argument("--commit", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/study"))
    args = parser.parse_args()
    record = publish(args.run, args.log, args.commit, args.out)
    print(json.dumps(record, indent=2))
    print(answer_table((args.out / "report.md").read_text()))


if __name__ == "__main__":
    main()
