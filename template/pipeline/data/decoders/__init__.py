"""Decoders: one per record format, each a pure function of a batch of records (bytes or table
rows) to instances typed by the serving signature, and dead letters for what does not fit.

`decoder_for` picks the one for a job; `job.decode` runs it. Nothing here knows Beam.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.data.decoders.base import Decoded, Decoder
from pipeline.data.decoders.csv_lines import CsvDecoder
from pipeline.data.decoders.json_lines import JsonLinesDecoder
from pipeline.data.decoders.key_values import KeyValuesDecoder, KeyValuesRowsDecoder
from pipeline.data.decoders.table_rows import TableRowsDecoder
from pipeline.data.decoders.tfrecords import TfRecordDecoder
from pipeline.data.decoders.whole_files import WholeFilesDecoder
from pipeline.data.formats import CSV, FILES, JSONL, KEY_VALUES, TFRECORD
from pipeline.data.instances import Feeding

BIGQUERY_ROWS = "bigquery_rows"  # table rows fed by column name
BIGQUERY_KEY_VALUES = "bigquery_key_values"  # the 2017 sample's key INTEGER, image STRING rows

_DECODERS: dict[str, Callable[[Feeding], Decoder]] = {
    KEY_VALUES: KeyValuesDecoder,
    JSONL: JsonLinesDecoder,
    CSV: CsvDecoder,
    TFRECORD: TfRecordDecoder,
    FILES: WholeFilesDecoder,
    BIGQUERY_ROWS: TableRowsDecoder,
    BIGQUERY_KEY_VALUES: KeyValuesRowsDecoder,
}


def decoder_for(record_format: str, feeding: Feeding) -> Decoder:
    return _DECODERS[record_format](feeding)


__all__ = ["BIGQUERY_KEY_VALUES", "BIGQUERY_ROWS", "Decoded", "Decoder", "decoder_for"]
