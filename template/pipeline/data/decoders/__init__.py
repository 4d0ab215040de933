"""Decoders: one per record format, each a pure function of a batch of records (bytes or table
rows) to instances typed by the serving signature, and dead letters for what does not fit.

`decoder_for` picks the one for a job; `job.decode` runs it. Nothing here knows Beam.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.data.decoders.base import Decoded, Decoder
from pipeline.data.decoders.columns import ColumnsDecoder, ColumnsKeyValuesDecoder
from pipeline.data.decoders.csv_lines import CsvDecoder
from pipeline.data.decoders.json_lines import JsonLinesDecoder
from pipeline.data.decoders.key_values import KeyValuesDecoder, KeyValuesRowsDecoder
from pipeline.data.decoders.table_rows import TableRowsDecoder
from pipeline.data.decoders.tfrecords import TfRecordDecoder
from pipeline.data.decoders.udf_records import UdfRecordsDecoder
from pipeline.data.decoders.whole_files import WholeFilesDecoder
from pipeline.data.formats import AVRO, CSV, FILES, JSONL, KEY_VALUES, PARQUET, TFRECORD
from pipeline.data.instances import Feeding
from pipeline.data.udf import UdfCode

BIGQUERY_ROWS = "bigquery_rows"  # table rows fed by column name
BIGQUERY_KEY_VALUES = "bigquery_key_values"  # the 2017 sample's key INTEGER, image STRING rows
COLUMNS_KEY_VALUES = "columns_key_values"  # those columns in a Parquet or Avro file

_DECODERS: dict[str, Callable[[Feeding], Decoder]] = {
    KEY_VALUES: KeyValuesDecoder,
    JSONL: JsonLinesDecoder,
    CSV: CsvDecoder,
    TFRECORD: TfRecordDecoder,
    FILES: WholeFilesDecoder,
    PARQUET: ColumnsDecoder,  # Arrow columns, row by row where a value needs a reason
    AVRO: ColumnsDecoder,  # rows, as table rows are (with Parquet's rule for lists that fill a tensor)
    BIGQUERY_ROWS: TableRowsDecoder,
    BIGQUERY_KEY_VALUES: KeyValuesRowsDecoder,
    COLUMNS_KEY_VALUES: ColumnsKeyValuesDecoder,
}


def decoder_for(record_format: str, feeding: Feeding, udf: UdfCode | None = None) -> Decoder:
    """The decoder of a format; with a UDF run before the model, the records go through it first."""
    if udf is not None and udf.before is not None:
        return UdfRecordsDecoder(record_format, feeding, udf)
    return _DECODERS[record_format](feeding)


__all__ = ["BIGQUERY_KEY_VALUES", "BIGQUERY_ROWS", "COLUMNS_KEY_VALUES", "Decoded", "Decoder", "decoder_for"]
