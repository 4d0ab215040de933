"""Picking a job's decoder: one per record format, and two for table rows."""

from __future__ import annotations

import pytest

from pipeline.data.decoders import BIGQUERY_KEY_VALUES, BIGQUERY_ROWS, decoder_for
from pipeline.data.decoders.csv_lines import CsvDecoder
from pipeline.data.decoders.json_lines import JsonLinesDecoder
from pipeline.data.decoders.key_values import KeyValuesDecoder, KeyValuesRowsDecoder
from pipeline.data.decoders.table_rows import TableRowsDecoder
from pipeline.data.decoders.tfrecords import TfRecordDecoder
from pipeline.data.decoders.whole_files import WholeFilesDecoder
from pipeline.data.formats import FORMATS
from pipeline.data.instances import KEY_INT, KEY_POSITION, Feeding
from pipeline.model.signatures import TensorSpec

IMAGE = Feeding((TensorSpec("image", "float32", (4,)),), "key", KEY_INT)
BYTES = Feeding((TensorSpec("data", "string", ()),), "key", KEY_POSITION)


@pytest.mark.parametrize(
    ("name", "feeding", "kind"),
    [
        ("key_values", IMAGE, KeyValuesDecoder),
        ("jsonl", IMAGE, JsonLinesDecoder),
        ("csv", IMAGE, CsvDecoder),
        ("tfrecord", BYTES, TfRecordDecoder),
        ("files", BYTES, WholeFilesDecoder),
        (BIGQUERY_ROWS, IMAGE, TableRowsDecoder),
        (BIGQUERY_KEY_VALUES, IMAGE, KeyValuesRowsDecoder),
    ],
)
def test_each_format_and_table_kind_has_its_decoder(name, feeding, kind):
    assert isinstance(decoder_for(name, feeding), kind)


def test_every_file_format_has_a_decoder():
    for record_format in FORMATS:
        feeding = BYTES if record_format in ("tfrecord", "files") else IMAGE
        assert decoder_for(record_format, feeding) is not None
    with pytest.raises(KeyError):
        decoder_for("orc", IMAGE)
