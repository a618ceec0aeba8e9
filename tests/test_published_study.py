"""The published study (`docs/study/`) is what `config/study.yaml` produces, as it stands, and
the README shows its answer: the two cannot drift apart silently."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from arbench.core.plan import model_entry, replicate_of

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "docs" / "study"


def published_verdicts() -> dict[str, dict]:
    return json.loads((STUDY / "verdicts.json").read_text())


def test_the_published_study_ran_the_study_config_as_it_stands():
    assert (STUDY / "config.yaml").read_bytes() == (REPO / "config/study.yaml").read_bytes(), (
        "config/study.yaml changed since the study was published: run it again and publish it "
        "(bench/publish_study.py), or restore it"
    )
    run = json.loads((STUDY / "run.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{7,40}", run["commit"])
    assert run["wall_seconds"] <= 4 * 3600  # from nothing on 2 CPU cores


def test_every_figure_the_published_report_shows_is_published():
    report = (STUDY / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert linked
    for figure in linked:
        assert (STUDY / figure).is_file(), figure


def test_every_model_of_the_study_finished_learning_with_two_seeds():
    """Every network ended by early stopping on a flat curve, every mixture by EM's own
    convergence or on a plateau, each model trained with two seeds."""
    with open(STUDY / "likelihoods.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    seeds: dict[tuple[str, str], int] = {}
    for row in rows:
        model = replicate_of(row["model"])[0]
        if model_entry(model).neural:
            assert row["training_ended_by"] == "early stopping", (row["dataset"], row["model"])
        assert row["finished_learning"] == "True", (row["dataset"], row["model"])
        seeds[row["dataset"], model] = seeds.get((row["dataset"], model), 0) + 1
    assert seeds and min(seeds.values()) >= 2


def test_each_verdict_is_published_with_its_shares_and_every_pair_of_runs():
    for dataset, found in published_verdicts().items():
        shares = found["shares"]
        assert abs(sum(shares.values()) - 1) < 1e-9, dataset
        top, share = next(iter(shares.items()))
        assert found["outcome"] == (top if share >= 0.8 else "unstable"), dataset
        runs = {row for row in found["matrix"]}
        assert runs and all(len(cells) >= 2 for cells in found["matrix"].values()), dataset


def test_the_readme_shows_the_published_answer_and_links_the_report():
    readme = (REPO / "README.md").read_text()
    assert "docs/study/report.md" in readme
    top = readme.split("\n## Set up and run", 1)[0]
    for dataset, found in published_verdicts().items():
        row = re.search(rf"^\| {dataset} \| \*\*{found['outcome']}\*\* \|(.*)$", top, re.MULTILINE)
        assert row, dataset
        share = next(iter(found["shares"].values()))
        assert f"{share:.0%}" in row.group(1), (dataset, "the share of resamples is shown")
    shown = re.findall(r"!\[[^\]]*\]\((docs/study/figures/[^)]+)\)", top)
    assert shown and all((REPO / figure).is_file() for figure in shown)


def test_a_changed_answer_is_never_silent():
    """The study's README keeps the previous answer beside the new one, with what moved it."""
    text = (STUDY / "README.md").read_text()
    table = text.split("## The previous answer", 1)[1]
    for dataset, found in published_verdicts().items():
        outcome = found["outcome"]
        row = re.search(
            rf"^\| {dataset} \| \*\*([a-z ]+)\*\* \| \*\*([a-z ]+)\*\* \| (.+) \|$", table, re.M
        )
        assert row, dataset
        assert row.group(2) == outcome and len(row.group(3)) > 20
