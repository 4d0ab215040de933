"""The run report in a real browser: headless Chromium (the Debian package `chromium`) opens the reports that
real runs wrote and shows every chart, drifted ones in the drift colour and beside the baseline's, while
the page asks for nothing beyond itself and its inline pictures, and runs no script.

The runs are the job's own (DirectRunner, in this process): the penguins rows of Biscoe island against a
baseline from the other islands' rows (docs/report.md's drift example), and a few hundred MNIST digits
with two broken records (a classifier with dead letters). A chart "renders" when the browser decoded its
picture and a screenshot of its place on the page holds ink in the chart's colours; a strip of the page's
margin, screenshotted the same way, is blank, and a page that does ask for a network resource is caught:
the checks can fail. Without chromium the tests skip, saying so; where CI is set they fail (tests/tools.py).
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from main import run
from pipeline.data.report_charts import BASELINE_COLOUR, DRIFT_COLOUR, RUN_COLOUR
from tests.chromium import Browser
from tests.conftest import SAMPLE_IMAGES, SAMPLE_MODEL, SAMPLES
from tests.tools import CHROMIUM, requires_tool

pytestmark = [
    pytest.mark.slow,
    requires_tool(
        CHROMIUM is not None, "chromium is not installed (apt-get install chromium): no browser to check the report in"
    ),
]

CHARTS = """[...document.querySelectorAll("img.chart")].map(img => {
  const box = img.getBoundingClientRect();
  return {key: img.dataset.chart, x: box.left + scrollX, y: box.top + scrollY, width: box.width, height: box.height,
          decoded: img.complete && img.naturalWidth > 0};
})"""


def rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32) / 255


def looks(png: bytes) -> dict[str, float]:
    """Shares of a screenshot's pixels: any ink (not white or the page's near-white), and each chart colour."""
    pixels = image.imread(io.BytesIO(png), format="png")[..., :3]
    shares = {"ink": float((pixels.min(axis=-1) < 0.9).mean())}
    for name, colour in (("run", RUN_COLOUR), ("drift", DRIFT_COLOUR), ("baseline", BASELINE_COLOUR)):
        shares[name] = float((np.abs(pixels - rgb(colour)).max(axis=-1) < 0.05).mean())
    return shares


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with Browser(tmp_path_factory.mktemp("chromium-profile")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def drift_report(tmp_path_factory) -> Path:
    """The drift example run for real: a baseline from the other islands' rows, then Biscoe's rows against it."""
    folder = tmp_path_factory.mktemp("drift")
    with (SAMPLES / "penguins" / "penguins.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    for name, keep in (("others.csv", lambda row: row[1] != "Biscoe"), ("biscoe.csv", lambda row: row[1] == "Biscoe")):
        with (folder / name).open("w", newline="") as handle:
            csv.writer(handle).writerows([rows[0], *filter(keep, rows[1:])])
    model = f"--model={SAMPLES / 'penguins' / 'model'}"
    assert run([f"--input={folder / 'others.csv'}", f"--output={folder / 'baseline'}", model]) == 0
    baseline = f"--baseline={folder / 'baseline-stats.json'}"
    assert run([f"--input={folder / 'biscoe.csv'}", f"--output={folder / 'biscoe'}", model, baseline]) == 0
    return folder / "biscoe-report.html"


@pytest.fixture(scope="module")
def classifier_report(tmp_path_factory) -> Path:
    """The sample model over 300 MNIST digits and two broken records."""
    folder = tmp_path_factory.mktemp("mnist")
    with gzip.open(SAMPLE_IMAGES, "rb") as handle:
        lines = [next(handle) for _ in range(300)]
    lines += [b"90001:0.5,0.5\n", b"90002:" + b",".join([b"x"] * 784) + b"\n"]
    (folder / "digits.txt").write_bytes(b"".join(lines))
    assert run([f"--input={folder / 'digits.txt'}", f"--output={folder / 'p'}", f"--model={SAMPLE_MODEL}"]) == 0
    return folder / "p-report.html"


def charts_on(browser: Browser, page: Path) -> list[dict]:
    browser.open(page)
    charts = browser.evaluate(CHARTS)
    assert charts, "no chart on the page"
    return charts


def shot(browser: Browser, chart: dict) -> dict[str, float]:
    return looks(browser.screenshot(chart["x"], chart["y"], chart["width"], chart["height"]))


def assert_loads_nothing(browser: Browser) -> None:
    urls = browser.requested_urls()
    assert urls[0].startswith("file://") and all(url.startswith(("file://", "data:image/svg+xml")) for url in urls[1:])
    assert browser.refused() == {} and browser.logged() == []  # no refused load, no policy violation, no error
    assert browser.evaluate("document.scripts.length") == 0


def test_the_drift_report_shows_each_chart_drifted_ones_first_in_red_beside_the_baseline(browser, drift_report):
    charts = charts_on(browser, drift_report)
    assert all(chart["decoded"] and chart["width"] > 300 and chart["height"] > 100 for chart in charts), charts
    inputs = [chart["key"] for chart in charts if chart["key"].startswith("inputs.")]
    drifted = browser.evaluate('[...document.querySelectorAll("article.drifted")].map(card => card.id)')
    assert "f-inputs.island" in drifted and "f-inputs.flipper_length_mm" in drifted  # the island and its birds
    assert "f-inputs.sex" not in drifted  # the same share of each sex on every island
    first_clean = next(index for index, key in enumerate(inputs) if f"f-{key}" not in drifted)
    assert all(f"f-{key}" not in drifted for key in inputs[first_clean:])  # drifted inputs come first
    for chart in charts:
        seen = shot(browser, chart)
        assert seen["ink"] > 0.03, (chart["key"], seen)
        if f"f-{chart['key']}" in drifted:
            assert seen["drift"] > 0.002 and seen["baseline"] > 0.005, (chart["key"], seen)
        elif chart["key"].startswith("inputs."):
            assert seen["run"] > 0.002 and seen["baseline"] > 0.005 and seen["drift"] == 0, (chart["key"], seen)
    assert_loads_nothing(browser)


def test_the_classifier_report_shows_classes_confidence_inputs_and_dead_letters(browser, classifier_report):
    charts = charts_on(browser, classifier_report)
    keys = [chart["key"] for chart in charts]
    assert keys[:2] == ["classes", "confidence"] and "inputs.image" in keys and keys[-1] == "dead_letters"
    for chart in charts:
        seen = shot(browser, chart)
        assert chart["decoded"] and seen["ink"] > 0.03, (chart["key"], seen)
        assert seen["drift" if chart["key"] == "dead_letters" else "run"] > 0.005, (chart["key"], seen)
    text = browser.evaluate("document.body.innerText")
    assert "2 dead letters" in text and "wrong_value_count" in text and "non_numeric_value" in text
    assert_loads_nothing(browser)


def test_the_checks_see_a_blank_place_and_a_page_that_reaches_out(browser, drift_report, tmp_path):
    charts_on(browser, drift_report)
    margin = looks(browser.screenshot(0, 0, 40, 400))  # beside the page's column: nothing drawn
    assert margin["ink"] == 0 and margin["run"] == 0
    page = drift_report.read_text()
    external = '<img class="chart" data-chart="x" src="http://127.0.0.1:9/chart.svg">'
    (tmp_path / "blocked.html").write_text(page.replace("<main>", f"<main>{external}", 1))
    charts = charts_on(browser, tmp_path / "blocked.html")
    assert not charts[0]["decoded"] and browser.refused() == {"http://127.0.0.1:9/chart.svg": "csp"}
    assert "violates the following Content Security Policy" in browser.logged()[0]["text"]
    (tmp_path / "open.html").write_text(f"<html><body>{external}</body></html>")
    browser.open(tmp_path / "open.html")
    assert "http://127.0.0.1:9/chart.svg" in browser.requested_urls() and browser.refused() == {}  # sent
