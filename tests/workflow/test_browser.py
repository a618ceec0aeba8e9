"""The HTML report (`snakemake --report report.html`) opened in a real browser, headless Chromium:
every figure opens and decodes, every table is in it byte for byte, the report's own page (the
answer first, every figure inside it) opens from it with every image loaded, a screenshot of its
first screen is kept (`test-output/`), the page logs no errors, and what it shows is not
blank."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_workflow import TINY, snakemake

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without these, Chromium reaches for Google's hosts at start, which a closed network refuses.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
    )
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report(finished) -> Path:
    snakemake(finished, TINY, "--report", "report.html")
    return finished / "report.html"


def open_report(browser, report: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url[:80]}"))
    page.goto(report.as_uri())
    page.wait_for_load_state("networkidle")
    return page, problems


def not_blank(png: bytes) -> bool:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    return pixels.std() > 5 and (pixels < 128).mean() > 0.001


def test_every_figure_opens_in_the_report_and_decodes(browser, report, finished):
    page, problems = open_report(browser, report)
    figures = sorted(
        p.relative_to(finished).as_posix() for p in (finished / "results/figures").glob("*.png")
    )
    assert figures
    categories = page.evaluate("categories")
    listed = {f for groups in categories.values() for files in groups.values() for f in files}
    assert set(figures) <= listed
    for category, groups in categories.items():
        shown_here = [f for group in groups.values() for f in group if f.endswith(".png")]
        if not shown_here:
            continue
        page.reload()
        page.wait_for_load_state("networkidle")
        page.locator("nav").get_by_text(category, exact=True).click()
        for figure in shown_here:
            page.locator("nav tr", has_text=figure).first.locator("a[iconname=eye]").click()
            shown = page.locator(f"img[src*='filename={Path(figure).name};']")
            shown.wait_for(state="visible")
            width = shown.evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width > 0, f"{figure} did not decode in the browser"
    page.reload()
    page.wait_for_load_state("networkidle")
    page.locator("nav").get_by_text("Samples", exact=True).click()
    page.locator("nav tr", has_text="mnist_samples_made.png").first.locator(
        "a[iconname=eye]"
    ).click()
    page.wait_for_timeout(300)
    assert not_blank(page.screenshot()), "the page showing the MNIST samples is blank"
    assert problems == []
    page.close()


def test_every_table_is_in_the_report_byte_for_byte(browser, report, finished):
    page, problems = open_report(browser, report)
    results = page.evaluate(
        "Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.data_uri]))"
    )
    for table in (
        "results/likelihoods.csv",
        "results/sample_quality.csv",
        "results/report.md",
        "results/report.html",
    ):
        assert table in results, table
        encoded = results[table].split("base64,", 1)[1]
        assert base64.b64decode(encoded) == (finished / table).read_bytes(), table
    assert problems == []
    page.close()


KEPT = Path(__file__).resolve().parents[2] / "test-output"


def test_the_reports_own_page_opens_from_it_with_every_image_and_the_answer_first(browser, report):
    """The report's page as the HTML report carries it: opened in the browser, every image
    in it decodes, the answer is on its first screen, and that screen is kept as a PNG."""
    page, problems = open_report(browser, report)
    carried = page.evaluate("results['results/report.html'].data_uri")
    html = base64.b64decode(carried.split("base64,", 1)[1]).decode()
    page.close()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_content(html, wait_until="load")
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.alt, i.complete ? i.naturalWidth : 0])"
    )
    assert len(images) > 20
    assert all(width > 0 for _, width in images), [alt for alt, width in images if not width]
    first_screen = page.screenshot()
    KEPT.mkdir(exist_ok=True)
    (KEPT / "report_first_screen.png").write_bytes(first_screen)
    assert not_blank(first_screen)
    top = page.evaluate("document.body.innerText.slice(0, 3000)")  # the first screen's text
    for dataset in ("mnist", "atari", "anime"):
        assert dataset in top
    assert "the original study's pair" in top
    assert problems == []
    page.close()
