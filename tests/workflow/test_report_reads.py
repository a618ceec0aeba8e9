"""The report a reader takes in at a glance, on the shared tiny run: the answer within its first
lines, no sentence written over and over, no table cell longer than a short sentence, every
figure it names there and readable, sample sheets at two or more screen pixels an image pixel,
and its HTML twin carrying every figure."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from arbench.report.figures import SHEET_COLUMNS
from arbench.report.tables import CELL

pytestmark = pytest.mark.slow

FIRST_SCREEN = 40
MOST_REPEATS = 4  # a sentence's pattern at most once a dataset and once more
MOST_LINES = 350


def report_of(run: Path) -> str:
    return (run / "results/report.md").read_text()


def test_the_report_opens_with_every_datasets_answer(finished):
    lines = report_of(finished).splitlines()
    opening = "\n".join(lines[:FIRST_SCREEN])
    for dataset in ("mnist", "atari", "anime"):
        assert re.search(rf"^\| {dataset} \| .*\*\*", opening, re.M), dataset
    assert "## The rule" in report_of(finished) and re.search(r"^1\. ", report_of(finished), re.M)
    assert len(lines) <= MOST_LINES


def sentences(text: str) -> list[str]:
    """The prose of a report: its lines that are not tables, headings or figures, in
    sentences, numbers and names made alike so that a sentence written per pair shows."""
    prose = [
        line
        for line in text.splitlines()
        if line and not line.startswith(("|", "#", "!", "1.", "2.", "3.", "4.", "5.", "6."))
    ]
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(prose)):
        pattern = re.sub(r"[-+−]?\d[\d,.]*", "#", sentence)
        pattern = re.sub(r"\b(nade|made|pixelcnn|gmm_diag|pca_gmm|gmm|mob)(\.r\d)?\b", "M", pattern)
        pattern = re.sub(r"\b(mnist|atari|anime)\b", "D", pattern)
        if len(pattern) > 20:
            found.append(pattern)
    return found


def test_no_sentence_is_written_over_and_over(finished):
    repeated = {
        s: n for s, n in Counter(sentences(report_of(finished))).items() if n > MOST_REPEATS
    }
    assert not repeated, repeated


def test_no_table_cell_is_longer_than_a_short_sentence(finished):
    for line in report_of(finished).splitlines():
        if line.startswith("|"):
            for cell in line.strip("|").split(" | "):
                assert len(cell.strip()) <= CELL, cell


def test_no_error_reads_as_exact_knowledge(finished):
    text = report_of(finished)
    assert not re.search(r"± 0(?![.\d])", text)
    assert not re.search(r"± \d(\.\d+)?e-", text)


def test_every_figure_the_report_names_is_there_and_readable(finished):
    results = finished / "results"
    named = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report_of(finished))
    assert len(named) > 20
    for figure in named:
        with Image.open(results / figure) as image:
            image.load()
            assert image.width > 100 and image.height > 50, figure
    for kind in ("pairs", "check", "calibration", "likelihoods"):
        for dataset in ("mnist", "atari", "anime"):
            assert f"figures/{dataset}_{kind}.png" in named, (dataset, kind)


def test_sample_sheets_show_every_image_pixel_as_two_or_more_screen_pixels(finished):
    for sheet in (finished / "results/figures").glob("*_samples_*.png"):
        with Image.open(sheet) as image:
            side = {"mnist": 28, "atari": 6, "anime": 4}[sheet.name.split("_")[0]]
            assert image.width >= 2 * side * SHEET_COLUMNS, sheet.name


def test_the_html_twin_carries_every_figure_of_the_report(finished):
    html = (finished / "results/report.html").read_text()
    named = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report_of(finished))
    embedded = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', html)
    assert len(embedded) == len(named)
    assert "<table>" in html and 'id="the-rule"' in html
