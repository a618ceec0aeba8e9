"""The published study (`docs/study/`) is what `config/study.yaml` produces, as it stands, and
the README shows its answer: the two cannot drift apart silently."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from arbench.core.plan import PRIMARY_PAIR, model_entry, replicate_of
from arbench.report.tables import CELL

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "docs" / "study"
HOURS = 5  # the study's budget from nothing on 2 CPU cores
SEEDS = 3
CALIBRATION_DRAWS = 20
FIRST_SCREEN, MOST_LINES = 40, 350


def published_verdicts() -> dict[str, dict]:
    return json.loads((STUDY / "verdicts.json").read_text())


def rows_of(name: str) -> list[dict]:
    with open(STUDY / name, newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_published_study_ran_the_study_config_as_it_stands():
    assert (STUDY / "config.yaml").read_bytes() == (REPO / "config/study.yaml").read_bytes(), (
        "config/study.yaml changed since the study was published: run it again and publish it "
        "(bench/publish_study.py), or restore it"
    )
    run = json.loads((STUDY / "run.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{7,40}", run["commit"])
    assert run["wall_seconds"] <= HOURS * 3600  # from nothing on 2 CPU cores
    # a report made again from the run's results names the commit whose code made it
    assert re.fullmatch(r"[0-9a-f]{40}", run["report_commit"])


def test_every_figure_the_published_report_shows_is_published():
    report = (STUDY / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert linked
    for figure in linked:
        assert (STUDY / figure).is_file(), figure
    for dataset in published_verdicts():
        for kind in ("pairs", "check", "calibration", "likelihoods"):
            assert f"figures/{dataset}_{kind}.png" in linked, (dataset, kind)


def test_the_published_report_opens_with_every_answer_and_reads_short():
    lines = (STUDY / "report.md").read_text().splitlines()
    assert len(lines) <= MOST_LINES
    opening = "\n".join(lines[:FIRST_SCREEN])
    for dataset in published_verdicts():
        assert re.search(rf"^\| {dataset} \| .*\*\*", opening, re.M), dataset
    text = "\n".join(lines)
    assert not re.search(r"± 0(?![.\d])", text) and not re.search(r"± \d(\.\d+)?e-", text)
    assert "excluded" not in text.lower(), "no metric is excluded for its error bar alone"
    cells = [
        c.strip() for line in lines if line.startswith("|") for c in line.strip("|").split(" | ")
    ]
    assert max(len(cell) for cell in cells) <= CELL, max(cells, key=len)


def test_every_model_of_the_study_finished_learning_with_three_seeds():
    """Every network ended by early stopping on a flat curve, every mixture by EM's own
    convergence or on a plateau, each model trained with three seeds."""
    seeds: dict[tuple[str, str], int] = {}
    for row in rows_of("likelihoods.csv"):
        model = replicate_of(row["model"])[0]
        if model_entry(model).neural:
            assert row["training_ended_by"] == "early stopping", (row["dataset"], row["model"])
        assert row["finished_learning"] == "True", (row["dataset"], row["model"])
        seeds[row["dataset"], model] = seeds.get((row["dataset"], model), 0) + 1
    assert seeds and min(seeds.values()) >= SEEDS


def test_the_sample_quality_table_holds_the_instruments_that_see_modes():
    rows = [r for r in rows_of("sample_quality.csv") if r["role"] == "model"]
    for dataset in published_verdicts():
        mine = [r for r in rows if r["dataset"] == dataset]
        assert mine and all(r["ndb"] and r["ndb_jsd"] for r in mine), dataset
    assert all(r["class_histogram"] for r in rows if r["dataset"] == "mnist")


def test_the_errors_were_calibrated_on_real_images_and_two_families():
    for dataset in published_verdicts():
        errors = json.loads((STUDY / "checks" / f"{dataset}.errors.json").read_text())
        draws = {source: len(found) for source, found in errors["draws"].items()}
        assert draws.pop("real") >= CALIBRATION_DRAWS, dataset
        families = {model_entry(m).family for m in draws if draws[m] >= CALIBRATION_DRAWS}
        assert len(families) >= 2, (dataset, draws)


def test_each_verdict_is_published_with_its_pair_first_and_every_pair_of_the_families():
    for dataset, found in published_verdicts().items():
        pair = found["primary_pair"]
        assert pair and pair["pair"] == list(PRIMARY_PAIR), dataset
        for row in found["matrix"].values():
            for cell in row.values():
                shares = cell["agreement"]["shares"]
                assert abs(sum(shares.values()) - 1) < 1e-9, dataset
                assert cell["agreement"]["majority"] == max(shares, key=shares.get)


def test_the_readme_shows_the_published_answer_and_links_the_report():
    readme = (REPO / "README.md").read_text()
    assert "docs/study/report.md" in readme
    top = readme.split("\n## Set up and run", 1)[0]
    for dataset, found in published_verdicts().items():
        line = re.search(rf"^\| {dataset} \| (.*)$", top, re.MULTILINE)
        assert line, dataset
        pair, family = found["primary_pair"]["outcome"], found["family"]["outcome"]
        assert line.group(1).index(pair) < line.group(1).index(family, len(pair)), dataset
    shown = re.findall(r"!\[[^\]]*\]\((docs/study/figures/[^)]+)\)", top)
    assert shown and all((REPO / figure).is_file() for figure in shown)


def test_a_changed_answer_is_never_silent():
    """The study's README keeps the previous answer beside the new one, with what moved it."""
    text = (STUDY / "README.md").read_text()
    table = text.split("## The previous answer", 1)[1]
    for dataset in published_verdicts():
        line = rf"^\| {dataset} \| \*\*(.+?)\*\* \| \*\*(.+?)\*\* \| (.+) \|$"
        row = re.search(line, table, re.M)
        assert row, dataset
        assert len(row.group(3)) > 20
