"""Sources: PTransforms that turn an input into RawRecords, knowing nothing of models.

Each source returns (records, dead_letters): a BigQuery row with a NULL field is rejected
here, since there is no text line to hand to the parser.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.coders import BytesCoder

from pipeline.records import DeadLetter, RawRecord, row_to_record

_DEAD = "dead_letters"


class ReadTextRecords(beam.PTransform):
    """Lines of the files matching a pattern, as bytes (so non-UTF-8 lines are dead-lettered,
    not fatal), with the name of the file each came from. Gzip is detected from the name."""

    def __init__(self, pattern: str):
        super().__init__()
        self._pattern = pattern

    def expand(self, begin):
        records = (
            begin
            | "Read lines" >> beam.io.ReadFromTextWithFilename(self._pattern, coder=BytesCoder())
            | "As records" >> beam.MapTuple(RawRecord)
        )
        no_dead_letters = begin | "No rejected rows" >> beam.Create([]).with_output_types(DeadLetter)
        return records, no_dead_letters


def _split_rows(row: dict, origin: str):
    outcome = row_to_record(row, origin)
    if isinstance(outcome, DeadLetter):
        yield beam.pvalue.TaggedOutput(_DEAD, outcome)
    else:
        yield outcome


class ReadBigQueryRecords(beam.PTransform):
    """Rows (key INTEGER, image STRING) of a table or query through the Storage Read API."""

    def __init__(self, table: str | None = None, query: str | None = None, project: str | None = None):
        super().__init__()
        if (table is None) == (query is None):
            raise ValueError("give exactly one of table and query")
        self._table = table
        self._query = query
        self._project = project

    def expand(self, begin):
        method = beam.io.ReadFromBigQuery.Method.DIRECT_READ
        if self._table:
            read = beam.io.ReadFromBigQuery(
                table=self._table, method=method, selected_fields=["key", "image"], project=self._project
            )
            origin = self._table
        else:
            read = beam.io.ReadFromBigQuery(
                query=self._query, use_standard_sql=True, method=method, project=self._project
            )
            origin = "query"
        rows = begin | "Read rows" >> read
        split = rows | "As records" >> beam.FlatMap(_split_rows, origin).with_outputs(_DEAD, main="records")
        return split.records, split[_DEAD]
