"""The report page: one self-contained HTML document that loads nothing and runs nothing, every string of the
data escaped, the verdict first, drifted features first and marked, each beside the baseline's distribution.

The stats are made from the samples' real data (tests/report_stats.py); the page is read back with the
standard library's HTML parser, as a browser's DOM would hold it."""

from __future__ import annotations

import base64
import copy
import json
import re
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from pipeline.data import statistics
from pipeline.data.report_html import CSP, drifted, ordered, render
from tests.report_stats import mnist_stats, penguin_rows, penguins_stats


class Page(HTMLParser):
    """What a browser would make of the page: its elements' attributes, and its text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str, **attributes: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attributes.items())]

    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture(scope="module")
def baseline() -> dict:
    return penguins_stats(penguin_rows("Biscoe", others=True))


@pytest.fixture(scope="module")
def drift_stats(baseline) -> dict:
    return penguins_stats(penguin_rows("Biscoe"), baseline=baseline)


@pytest.fixture(scope="module")
def drift_page(drift_stats, baseline) -> str:
    return render(drift_stats, baseline)


@pytest.fixture(scope="module")
def mnist_page() -> str:
    return render(mnist_stats(500))


def chart_svgs(page: Page) -> dict[str, str]:
    charts = {}
    for image in page.all("img"):
        prefix = "data:image/svg+xml;base64,"
        assert image["src"].startswith(prefix) and image.get("alt")
        charts[image["data-chart"]] = base64.b64decode(image["src"][len(prefix) :]).decode()
    return charts


def test_the_page_loads_nothing_and_runs_nothing(drift_page, mnist_page):
    for text in (drift_page, mnist_page):
        page = Page(text)
        assert page.all("meta", **{"http-equiv": "Content-Security-Policy"})[0]["content"] == CSP
        assert not page.all("script") and not page.all("link") and not page.all("iframe")
        sources = [a.get("src") or a.get("href") for _, a in page.elements if "src" in a or "href" in a]
        assert sources and all(source.startswith(("data:image/svg+xml;base64,", "#")) for source in sources)
        assert not re.search(r"\son\w+=", text)  # no event handler attributes


def test_every_string_of_the_data_is_shown_as_text_never_as_markup(mnist_page):
    page = Page(mnist_page)
    assert not page.all("script") and "<b>bold" not in mnist_page and "&lt;b&gt;bold" in mnist_page
    words = page.words()
    assert "gs://bucket/<script>alert('x')</script>.txt" in words
    assert 'value 12 is "<b>bold</b>" & not a number' in words


def test_hostile_feature_names_and_values_stay_text():
    stats = penguins_stats(penguin_rows("Dream"))
    hostile = '"><img src=x onerror=alert(1)>'
    stats["inputs"][hostile] = stats["inputs"].pop("island")
    stats["inputs"][hostile]["top"][0][0] = "</table><script>x()</script>"
    stats["run"]["input"] = "<title>"
    page = Page(render(stats))
    assert not page.all("script") and len(page.all("img")) == len(chart_svgs(page))
    assert hostile in page.words() and "</table><script>x()</script>" in page.words()
    ids = [attributes["id"] for _, attributes in page.elements if "id" in attributes]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[\w.-]+", element_id) for element_id in ids)


def test_the_verdict_says_first_what_drifted(drift_page, drift_stats):
    page = Page(drift_page)
    verdict = page.words().split("Run ")[0]
    assert "5 of 8 features drifted from the baseline: inputs.island, outputs.species" in verdict
    assert "No dead letters" in verdict
    assert page.all("section", **{"class": "verdict bad"})
    assert drifted(drift_stats["drift"])[:2] == ["inputs.island", "outputs.species"]


def test_without_drift_or_dead_letters_the_verdict_is_good():
    page = Page(render(penguins_stats(penguin_rows())))
    assert page.all("section", **{"class": "verdict good"})
    assert "No baseline" in page.words() and "Drift against the baseline" not in page.words()


def test_drifted_inputs_come_first_and_marked_each_beside_the_baseline(drift_page, drift_stats):
    page = Page(drift_page)
    cards = [a["id"] for a in page.all("article") if a["id"].startswith("f-inputs.")]
    assert cards == ["f-inputs.island", "f-inputs.flipper_length_mm", "f-inputs.bill_depth_mm", "f-inputs.body_mass_g",
                     "f-inputs.bill_length_mm", "f-inputs.sex"]  # fmt: skip
    marked = {a["id"] for a in page.all("article", **{"class": "card drifted"})}
    assert marked == {f"f-{key}" for key, score in drift_stats["drift"]["features"].items() if score["drifted"]}
    svgs = chart_svgs(page)
    for key in ("inputs.island", "inputs.sex", "inputs.body_mass_g", "outputs.species"):
        assert "<!-- baseline -->" in svgs[key] and "<!-- this run -->" in svgs[key]
    assert "<!-- Torgersen -->" in svgs["inputs.island"]  # the baseline's values, though this run has none
    words = page.words()
    assert "drifted · JS 0.482" in words and "L∞ 0.009" in words
    links = [a["href"] for a in page.all("a")]
    assert links[:2] == ["#f-inputs.island", "#f-outputs.species"]  # the drift table, largest distance first


def test_without_the_baselines_stats_the_distances_stay_and_the_charts_show_the_run_alone(drift_stats):
    page = Page(render(drift_stats))
    assert "drifted · JS 0.482" in page.words()
    assert "<!-- baseline -->" not in chart_svgs(page)["inputs.flipper_length_mm"]


def test_a_classifier_shows_its_classes_confidence_outputs_inputs_and_dead_letters(mnist_page):
    page = Page(mnist_page)
    svgs = chart_svgs(page)
    assert list(svgs) == ["classes", "confidence", "outputs.scores", "inputs.images", "dead_letters"]
    for svg in svgs.values():
        assert ElementTree.fromstring(svg.encode()).tag.endswith("svg")
    words = page.words()
    assert "images number · 784 values a record" in words and "all 784 values of each record" in svgs["inputs.images"]
    assert "4 dead letters (0.8% of records read): non_numeric_value 1, wrong_value_count 3." in words
    assert "wrong_value_count samples/mnist/images.txt.gz line 17 783 values, not 784" in words
    assert "500 predictions" in words and "504 records read" in words


def test_counts_that_do_not_add_up_are_called_out():
    stats = mnist_stats(100)
    stats["run"]["predictions"] -= 1
    assert "Records read ≠ predictions + dead letters." in Page(render(stats)).words()


def test_features_without_values_bytes_and_mismatched_baselines_draw_what_they_can(baseline):
    stats = penguins_stats(penguin_rows("Biscoe"), baseline=baseline)
    stats["inputs"]["bill_length_mm"] = {"kind": "number", "count": 0, "missing": 0, "values_per_record": 1}
    sizes = copy.deepcopy(stats["inputs"]["body_mass_g"])
    stats["inputs"]["image_bytes"] = {
        "kind": "bytes",
        "count": 163,
        "missing": 0,
        "values_per_record": 1,
        "size": sizes,
    }
    mismatched = copy.deepcopy(baseline)
    mismatched["inputs"]["sex"] = mismatched["inputs"]["body_mass_g"]  # a number in the baseline, a string here
    page = Page(render(stats, mismatched))
    svgs = chart_svgs(page)
    assert "inputs.bill_length_mm" not in svgs and "No values to chart." in page.words()
    assert "bytes a value" in svgs["inputs.image_bytes"] and "not in the baseline" in page.words()
    assert "<!-- baseline -->" not in svgs["inputs.sex"]


def test_without_drift_features_keep_the_signatures_order(drift_stats):
    inputs = drift_stats["inputs"]
    assert ordered("inputs", inputs, None) == list(inputs)
    assert ordered("inputs", inputs, drift_stats["drift"])[0] == "island"


def test_a_statistics_only_run_is_said_to_be_one_and_not_taken_for_lost_records():
    stats = penguins_stats(penguin_rows())
    stats["run"] |= {"statistics_only": True, "predictions": 0}
    stats["outputs"] = {}
    page = Page(render(stats))
    assert "Statistics only" in page.words() and "Records read ≠" not in page.words()
    assert page.all("section", **{"class": "verdict good"}) and "Outputs" not in page.words()


def test_sections_come_in_the_order_of_what_needs_looking_at(drift_page, mnist_page):
    assert re.findall(r"<h2>(.*?)</h2>", drift_page) == ["Run", "Drift against the baseline", "Inputs", "Outputs"]
    assert re.findall(r"<h2>(.*?)</h2>", mnist_page) == ["Run", "Predictions", "Outputs", "Inputs", "Dead letters"]


def test_the_stats_drawn_here_follow_the_schema_the_job_writes(drift_stats, baseline):
    """The pages above are drawn from stats of the job's own schema (docs/report.md), not of a shape of their own."""
    schema = json.loads((Path(statistics.__file__).parent / "stats_schema.json").read_text())
    for stats in (drift_stats, baseline, mnist_stats(100)):
        jsonschema.validate(stats, schema)


def test_a_classifier_of_many_classes_shows_its_most_predicted_with_their_share_of_all():
    stats = mnist_stats(100)
    counts = [1] * 1000
    counts[7], counts[512] = 500, 300
    stats["classes"] = {"names": [f"class {i}" for i in range(1000)], "counts": counts, "confidence": None}
    page = Page(render(stats))
    words = page.words()
    assert "1000 classes, the 30 most predicted shown" in words
    assert "class 7 500 27.8%" in words and "class 512 300 16.7%" in words  # shares of all 1,798 predictions
    svg = chart_svgs(page)["classes"]
    assert "<!-- class 7 -->" in svg and "<!-- class 999 -->" not in svg
