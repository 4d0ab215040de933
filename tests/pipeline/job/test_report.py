"""The report step in a real Beam pipeline: the finished stats become `<output>-report.html`, with the
baseline's distributions read back beside the run's; a report that cannot be drawn or written is logged,
and the job goes on."""

from __future__ import annotations

import json
import logging

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.job.report import WriteReport, read_baseline, report_location, write_report
from tests.report_stats import mnist_stats, penguin_rows, penguins_stats


def test_the_report_goes_beside_the_stats_json():
    assert report_location("gs://b/out/predictions-stats.json") == "gs://b/out/predictions-report.html"
    assert (
        report_location("gs://b/s/p-stats-20261128T060004.000000Z.json")
        == "gs://b/s/p-report-20261128T060004.000000Z.html"
    )
    assert report_location("/tmp/run-stats/other.json") == "/tmp/run-stats/other-report.html"


def test_the_pipeline_writes_the_report_beside_each_stats_json_written(tmp_path):
    stats_path = str(tmp_path / "out" / "predictions-stats.json")
    location = str(tmp_path / "out" / "predictions-report.html")  # its folder made as a text output's would be
    stats = mnist_stats(200)
    with test_pipeline.TestPipeline() as pipeline:
        written = pipeline | beam.Create([(stats_path, stats)]) | WriteReport()
        assert_that(written, equal_to([location]))
    page = (tmp_path / "out" / "predictions-report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<b>200</b><span>predictions</span>" in page
    assert page.count('class="chart"') == 5


def test_with_a_baseline_its_distributions_are_read_back_beside_the_runs(tmp_path):
    baseline = penguins_stats(penguin_rows("Biscoe", others=True))
    stats = penguins_stats(penguin_rows("Biscoe"), baseline=baseline)
    stats["drift"]["baseline"] = str(tmp_path / "baseline-stats.json")
    (tmp_path / "baseline-stats.json").write_text(json.dumps(baseline))
    assert read_baseline(stats) == baseline
    location = str(tmp_path / "biscoe-report.html")
    assert write_report(stats, location) == location
    with_baseline = (tmp_path / "biscoe-report.html").read_text()
    assert write_report({**stats, "drift": None}, location) == location
    without = (tmp_path / "biscoe-report.html").read_text()
    assert len(with_baseline) > len(without) + 10_000  # paired bars and shaded histograms: more drawing
    (tmp_path / "baseline-stats.json").unlink()
    assert write_report(stats, location, baseline) == location  # the baseline as read at launch: no reading again
    assert (tmp_path / "biscoe-report.html").read_text() == with_baseline


def test_a_baseline_gone_since_the_launch_leaves_the_distances_and_a_warning(tmp_path, caplog):
    stats = penguins_stats(penguin_rows("Biscoe"), baseline=penguins_stats(penguin_rows("Biscoe", others=True)))
    stats["drift"]["baseline"] = str(tmp_path / "gone-stats.json")
    with caplog.at_level(logging.WARNING):
        assert read_baseline(stats) is None
        assert write_report(stats, str(tmp_path / "r.html")) is not None
    assert "gone-stats.json could not be read again" in caplog.text
    assert "drifted · JS 0.482" in (tmp_path / "r.html").read_text()


def test_a_report_that_cannot_be_written_is_logged_and_the_job_goes_on(tmp_path, caplog):
    (tmp_path / "a-file").write_text("")
    location = str(tmp_path / "a-file" / "predictions-report.html")  # under a file: no folder can be made
    with caplog.at_level(logging.ERROR), test_pipeline.TestPipeline() as pipeline:
        written = pipeline | beam.Create([(location.replace("report.html", "stats.json"), mnist_stats(50))])
        assert_that(written | WriteReport(), equal_to([]))
    assert f"The run's report was not written to {location}" in caplog.text
