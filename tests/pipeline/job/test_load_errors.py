"""A batch load refused for a row's content fails the job with one line that names the file and the row.

BigQuery (unlike the emulator) says in a failed load's errorResult only "look into the errors[] collection";
a proxy in front of the emulator answers the load job's jobs.get as BigQuery does."""

from __future__ import annotations

import json
import re

import apache_beam as beam
import pytest
from apache_beam.io.gcp import bigquery_tools
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.plugin import BeamPlugin

from pipeline import compat
from pipeline.errors import OutputRefused
from pipeline.job.load_errors import NameRefusedRows
from pipeline.job.sinks import WritePredictionsBigQuery
from tests.fault_proxy import SCRIPTED, Forward, Request, Rule

TOO_MANY = (
    "Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: 1; "
    "errors: 1. Please look into the errors[] collection for more details."
)
ROW = "Error while reading data, error message: JSON parsing error in row starting at position 17: Could not\n"
ROW += "convert value to double. Field: confidence; Value: 1e999"


def test_every_worker_imports_the_fix_when_it_starts():
    path = f"{NameRefusedRows.__module__}.{NameRefusedRows.__name__}"
    assert path in BeamPlugin.get_all_plugin_paths()  # what Dataflow's workers import before any work
    assert getattr(bigquery_tools.BigQueryWrapper.wait_for_bq_job, "names_rows", False)


def test_a_failed_jobs_errors_are_one_line_each_named_once():
    from apache_beam.io.gcp.internal.clients import bigquery

    too_many = bigquery.ErrorProto(reason="invalid", message=TOO_MANY)
    row = bigquery.ErrorProto(reason="invalid", location="gs://b/f.json", message=ROW)
    status = bigquery.JobStatus(state="DONE", errorResult=too_many, errors=[too_many, row])
    line = compat.failed_job_line("job1", status)
    assert line == (f"BigQuery job job1 failed: invalid: {TOO_MANY} | invalid (gs://b/f.json): {' '.join(ROW.split())}")


def refused_like_bigquery(request: Request, forward: Forward) -> tuple[int, bytes]:
    """The load job as the emulator ran it, its status as BigQuery reports a load refused for one row."""
    status, body = forward(b"")
    job = json.loads(body)
    if status == 200 and job["status"]["state"] == "DONE":
        file = job["configuration"]["load"]["sourceUris"][0]
        too_many = {"reason": "invalid", "message": TOO_MANY}
        job["status"] = {
            "state": "DONE",
            "errorResult": too_many,
            "errors": [too_many, {"reason": "invalid", "location": file, "message": ROW}],
        }
    return status, json.dumps(job).encode()


@pytest.mark.emulators
def test_a_load_refused_for_a_rows_content_names_the_file_and_the_row(cloud_emulators, faulty_clouds):
    from google.cloud import bigquery

    bigquery.Client().create_dataset("load_errors", exists_ok=True)
    refuse = Rule(
        kinds=(SCRIPTED,),
        method="GET",
        path=r"/jobs/beam_bq_job_LOAD_[^/]+$",
        script=refused_like_bigquery,
        max_in_a_row=100,
        name="jobs.get of the load",
    )
    schema = {"fields": [{"name": "key", "type": "INTEGER", "mode": "REQUIRED"}]}
    options = PipelineOptions(cloud_emulators.beam_options())
    with (
        faulty_clouds.through(bq=[refuse]),
        pytest.raises(OutputRefused) as raised,
        beam.Pipeline(options=options) as pipeline,
    ):
        rows = pipeline | beam.Create([{"key": 1}, {"key": 2}])
        _ = rows | WritePredictionsBigQuery("load_errors.refused", schema, cloud_emulators.project)
    line = re.search(r"BigQuery job \S+ failed: .*", str(raised.value))
    assert line, str(raised.value)
    assert re.search(r"\| invalid \(gs://[^)]+\): .* row starting at position 17: Could not convert", line.group())
