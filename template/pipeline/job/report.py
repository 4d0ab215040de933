"""The job's report step: the finished statistics of a run become `<output>-report.html` beside its stats JSON.

The statistics step hands over each stats JSON it wrote, with its path (docs/report.md); this step draws the page
(pipeline.data.report_html), with the baseline's distributions beside the run's where drift was measured,
and writes it through Beam's file systems (a local path, gs://...). A report that cannot be drawn or
written is logged, never a failed job: the predictions and the stats JSON are what the run is for.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.data.report_html import render

REPORT = "-report"

_LOG = logging.getLogger(__name__)
_STATS_NAME = re.compile(r"-stats(-[^/]*)?\.json$")  # <prefix>-stats.json, a streaming job's <prefix>-stats-<time>.json


def report_location(stats_location: str) -> str:
    """Where the report of a stats JSON goes: beside it, `<prefix>-stats.json` -> `<prefix>-report.html` (and a
    streaming job's `<prefix>-stats-<time>.json` -> `<prefix>-report-<time>.html`)."""
    match = _STATS_NAME.search(stats_location)
    if match is None:
        return stats_location.removesuffix(".json") + REPORT + ".html"
    return stats_location[: match.start()] + REPORT + (match.group(1) or "") + ".html"


def read_baseline(stats: dict[str, Any]) -> dict[str, Any] | None:
    """The baseline's stats the run's drift was measured against, for the charts; None without one, or if
    it cannot be read now (the page then shows the run's distributions and the distances alone)."""
    location = (stats.get("drift") or {}).get("baseline")
    if not location:
        return None
    try:
        with FileSystems.open(location, compression_type="uncompressed") as handle:
            return json.loads(handle.read())
    except Exception as error:  # the drift is in the stats already: a report without the baseline's charts
        _LOG.warning("The report shows no baseline charts: %s could not be read again (%s)", location, error)
        return None


def write_report(stats: dict[str, Any], location: str, baseline: dict[str, Any] | None = None) -> str | None:
    """Draws and writes the report of `stats` to `location`, with `baseline`'s distributions (else read from
    where the stats say); the location written, or None if it was not."""
    try:
        if baseline is None:
            baseline = read_baseline(stats)
        page = render(stats, baseline if stats.get("drift") else None).encode()
        with FileSystems.create(location, mime_type="text/html") as handle:
            handle.write(page)
    except Exception as error:  # a report is a view of the results, never a reason to fail the job
        _LOG.error("The run's report was not written to %s: %s", location, error)
        return None
    return location


def _write_beside(stats_path: str, stats: dict[str, Any], baseline: dict[str, Any] | None = None) -> str | None:
    return write_report(stats, report_location(stats_path), baseline)


class WriteReport(beam.PTransform):
    """Writes the report of each (stats path, stats) the statistics step wrote, beside it; gives the report
    locations written. `baseline`: the baseline's stats, as read at launch (else read again from its location)."""

    def __init__(self, baseline: dict[str, Any] | None = None):
        super().__init__()
        self._baseline = baseline

    def expand(self, written: beam.PCollection) -> beam.PCollection:
        return (
            written
            | "Draw and write" >> beam.MapTuple(_write_beside, baseline=self._baseline)
            | "Written" >> beam.Filter(lambda location: location is not None)
        )
