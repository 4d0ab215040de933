"""Emptying what an earlier run of the same command left, at launch, so that a rerun holds one run's results.

Text outputs: Beam replaces only shards of the same count and leaves the temp folders of a killed
run behind. BigQuery outputs: WRITE_TRUNCATE replaces a table only when a load job runs, and none
runs for an output that gets no rows this time (say, no dead letters).
"""

from __future__ import annotations

import re

from apache_beam.io.filesystems import FileSystems
from google.api_core import exceptions

from pipeline.config import TEXT_SUFFIX, IoKind, JobConfig
from pipeline.errors import LaunchError, first_line
from pipeline.launch.retries import retrying
from pipeline.launch.table_checks import bigquery_client, table_parts


def clear_text_output(prefix: str) -> list[str]:
    """Deletes what an earlier run left under a text prefix: its shards and Beam's temp folders.

    Beam replaces only shards of the same count, so a rerun that makes fewer shards would
    leave stale ones beside its own; and a killed run leaves `beam-temp-*` folders. Clearing
    both at launch makes a text output behave like a truncated table: it holds one run.
    """
    directory, name = FileSystems.split(prefix)
    patterns = [
        f"{prefix}-*-of-*{TEXT_SUFFIX}",
        FileSystems.join(directory, f"beam-temp-{name}-*"),
        FileSystems.join(directory, f"beam-temp-{name}-*", "*"),
    ]
    # Globs are broad (`[0-9]*` is one digit, then anything): keep exactly this prefix's shards
    # and Beam's temp folders for it (`beam-temp-<name>-<uuid1 hex>`), never a longer prefix's.
    shard = re.compile(re.escape(name) + r"-\d+-of-\d+" + re.escape(TEXT_SUFFIX))
    temp = re.compile(r"beam-temp-" + re.escape(name) + r"-[0-9a-f]{32}")

    def is_stale(path: str) -> bool:
        parent, base = FileSystems.split(path.rstrip("/"))
        return bool(shard.fullmatch(base) or temp.fullmatch(base) or temp.fullmatch(FileSystems.split(parent)[1]))

    found = {meta.path for result in FileSystems.match(patterns) for meta in result.metadata_list}
    stale = sorted(filter(is_stale, found), key=len, reverse=True)  # a temp folder's files before it
    if stale:
        FileSystems.delete(stale)
    return stale


def clear_table_output(flag: str, table: str, project: str | None) -> bool:
    """Empties a BigQuery output table left by an earlier run; True if there was one.

    WRITE_TRUNCATE replaces a table only when a load job runs, and none runs for an output
    that gets no rows (say, no dead letters this time): the earlier run's rows would stay.
    TRUNCATE keeps the table's schema, description and access settings.
    """
    table_project, dataset, table_id = table_parts(flag, table, project)
    client = bigquery_client(table_project)
    reference = f"{table_project}.{dataset}.{table_id}"
    try:
        retrying(lambda: client.get_table(reference), "tables.get")
    except exceptions.NotFound:
        return False
    retrying(lambda: client.query(f"TRUNCATE TABLE `{reference}`").result(), "TRUNCATE TABLE")
    return True


def clear_earlier_run(config: JobConfig) -> list[str]:
    """Empties the outputs an earlier run of the same command left; returns what it did, to print. A
    streaming job adds to its outputs and clears nothing: a job it replaces wrote there, as may others."""
    if config.streaming:
        return []
    done = []
    for flag, kind, location in (
        ("--output", config.sink, config.output),
        ("--dead_letter", config.dead_letter_kind, config.dead_letter),
    ):
        try:
            if kind is IoKind.TEXT and (removed := clear_text_output(location)):
                done.append(f"Cleared {len(removed)} leftover file(s) of an earlier run under {location}")
            elif kind is IoKind.BIGQUERY and clear_table_output(flag, location, config.project):
                done.append(f"Emptied table {location} of an earlier run")
        except LaunchError:
            raise
        except Exception as error:  # no permission to delete or truncate, ...
            raise LaunchError(f"{flag}={location}: cannot clear an earlier run's output: {first_line(error)}") from None
    return done
