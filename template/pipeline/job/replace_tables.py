"""A BigQuery output that got no rows this run emptied, once the run has succeeded.

A batch job writes its tables with WRITE_TRUNCATE load jobs, each of which replaces a table's rows
at once when it succeeds, so a reader sees the earlier rows until then. No load runs for an output
that gets no rows (say, no dead letters this time), so the earlier run's rows would stay: the job's
last step empties such a table instead. TRUNCATE TABLE keeps its schema, description and access
settings. A table changed since this run started is left alone: another run loaded it meanwhile, and
its rows are newer than this run's nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apache_beam.io.gcp.bigquery_tools import parse_table_reference
from google.api_core import exceptions
from google.cloud import bigquery

from pipeline.job.retries import retrying

_LOGGER = logging.getLogger(__name__)


def table_name(spec: str, project: str | None) -> str:
    """`project.dataset.table` of a spec, read as WriteToBigQuery reads it (the job's project if it names none)."""
    reference = parse_table_reference(spec)
    return f"{reference.projectId or project}.{reference.datasetId}.{reference.tableId}"


def changed_since(modified: datetime | None, started_unix_s: float) -> bool:
    """Whether a table's last change came after this run started (BigQuery's time against the launch's)."""
    return modified is not None and modified.timestamp() >= started_unix_s


def empty_table(spec: str, project: str | None, started_unix_s: float) -> bool:
    """Empties the table `spec` if it holds an earlier run's rows; True if it did."""
    name = table_name(spec, project)
    if "$" in name or "@" in name:  # a partition or snapshot decorator: TRUNCATE would empty the whole table
        _LOGGER.warning("%s: got no rows this run; a decorated table is not emptied", spec)
        return False
    client = bigquery.Client(project=name.rsplit(".", 2)[0])
    try:
        table = retrying(lambda: client.get_table(name), "tables.get")
    except exceptions.NotFound:
        return False  # no earlier run wrote it
    if changed_since(table.modified, started_unix_s):
        _LOGGER.warning("%s: got no rows this run, but changed since it started; left as it is", spec)
        return False
    retrying(lambda: client.query(f"TRUNCATE TABLE `{name}`").result(), "TRUNCATE TABLE")
    _LOGGER.info("%s: got no rows this run; emptied", spec)
    return True
