"""The report's charts: valid, self-contained SVG documents, the same bytes for the same stats, the data's
strings drawn literally whatever they hold, and shares that compare histograms of different bins."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import pytest

from pipeline.data import report_charts as charts

HISTOGRAM = {"edges": [0.0, 1.0, 2.0, 4.0], "counts": [1, 3, 4]}


def texts(svg: str) -> list[str]:
    """The strings a chart draws (matplotlib writes each beside its glyph paths, as a comment)."""
    return re.findall(r"<!-- (.*?) -->", svg)


def parsed(svg: str) -> ElementTree.Element:
    root = ElementTree.fromstring(svg.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def test_labels_are_printable_and_short():
    assert charts.label("Biscoe") == "Biscoe"
    assert charts.label("a\x00b\nc") == "a\ufffdb\ufffdc"
    long = charts.label("x" * 40)
    assert len(long) == 22 and long.endswith("…")


def test_shares_and_densities_make_histograms_of_other_bins_comparable():
    assert charts.shares([1, 3]) == [0.25, 0.75]
    assert charts.shares([0, 0]) == [0.0, 0.0]
    heights, edges = charts.densities(HISTOGRAM)
    assert edges == [0.0, 1.0, 2.0, 4.0]
    assert heights == pytest.approx([1 / 8, 3 / 8, 4 / 8 / 2])
    assert sum(h * (b - a) for h, a, b in zip(heights, edges, edges[1:], strict=False)) == pytest.approx(1.0)


def test_one_value_alone_is_drawn_as_one_bar_around_it():
    counts, edges = charts.drawable({"edges": [5.0] * 21, "counts": [7] + [0] * 19})
    assert counts == [7.0] and edges == [4.5, 5.5]


def test_a_log_axis_only_where_a_linear_one_would_hide_the_bars():
    assert charts.skewed([1_000_000, 900, 800, 1200, 40_000])
    assert not charts.skewed([10, 30, 25, 5])
    assert not charts.skewed([100, 0, 0, 1])  # too few bars to judge


def test_every_chart_is_one_svg_document_with_nothing_to_fetch():
    svgs = [
        charts.histogram_chart(HISTOGRAM),
        charts.histogram_chart(HISTOGRAM, baseline={"edges": [0.0, 2.0, 4.0], "counts": [5, 5]}, drifted=True),
        charts.top_values_chart([["a", 3], ["b", 1]], 4),
        charts.top_values_chart([["a", 3]], 4, baseline_top=[["c", 2]], baseline_count=2),
        charts.class_chart([0.8, 0.2, 0.0], ["cat", "dog", "eel"]),
        charts.class_chart([0.6, 0.4], ["0", "1"], baseline_shares=[0.5, 0.5]),
        charts.reasons_chart({"bad_csv": 2, "not_json": 5}),
    ]
    for svg in svgs:
        root = parsed(svg)
        links = [value for element in root.iter() for name, value in element.attrib.items() if name.endswith("href")]
        assert all(link.startswith("#") for link in links), links  # glyphs and clips defined in the document
        assert "<text" not in svg  # text as paths: no font needed where the page is viewed
        assert "<script" not in svg


def test_the_same_stats_give_the_same_bytes():
    assert charts.histogram_chart(HISTOGRAM) == charts.histogram_chart(HISTOGRAM)


def test_a_baseline_is_drawn_beside_the_run_with_a_legend():
    alone = texts(charts.top_values_chart([["Biscoe", 9]], 9))
    beside = texts(
        charts.top_values_chart([["Biscoe", 9]], 9, baseline_top=[["Dream", 6], ["Torgersen", 3]], baseline_count=9)
    )
    assert "baseline" not in alone and "Dream" not in alone
    assert {"baseline", "this run", "Biscoe", "Dream", "Torgersen"} <= set(beside)


def test_the_most_frequent_values_are_shown_first_and_at_most_the_limit():
    top = [[f"v{index:02}", 100 - index] for index in range(20)]
    drawn = [text for text in texts(charts.top_values_chart(top, 2000, limit=5)) if text.startswith("v")]
    assert sorted(drawn) == ["v00", "v01", "v02", "v03", "v04"]


def test_strings_of_the_data_are_drawn_literally_not_as_mathtext_or_markup():
    awkward = ["$\\foo$", "<b>&", "$", "a\x00b"]
    svg = charts.top_values_chart([[value, 1] for value in awkward], 4)  # mathtext would refuse "$\foo$"
    parsed(svg)
    assert {"$\\foo$", "&lt;b&gt;&amp;", "$", "a\ufffdb"} <= set(texts(svg))
    parsed(charts.class_chart([0.3, 0.7], ["$x^$", "<i>"]))


def test_a_histogram_of_skewed_values_gets_a_log_axis():
    skewed = {"edges": [float(edge) for edge in range(21)], "counts": [1_000_000] + [500] * 18 + [90_000]}
    assert "count (log scale)" in texts(charts.histogram_chart(skewed))
    assert "count" in texts(charts.histogram_chart(HISTOGRAM))
