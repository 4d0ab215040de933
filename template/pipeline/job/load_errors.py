"""A batch load that BigQuery refuses for a row's content fails the job with one line naming the file and
the row's position, where Beam would say only "look into the errors[] collection" (`compat`).

Beam waits for its load jobs on the workers, so the fix must be in place there: a Dataflow worker imports
the module of every BeamPlugin subclass the launcher had loaded when it starts, before any work, and this
module applies it when imported (on the launcher, and in a local run, through `sinks`).
"""

from __future__ import annotations

from apache_beam.utils.plugin import BeamPlugin

from pipeline import compat


class NameRefusedRows(BeamPlugin):
    """Never made: being a BeamPlugin is what has each worker import this module at its start."""


compat.name_refused_rows_in_failed_loads()
