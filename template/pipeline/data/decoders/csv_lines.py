"""CSV: a header row names the columns; each column feeds the signature input of the same name.

Vertex AI's rule types the values: unquoted values are numbers, quoted ones text. A numeric
input therefore takes unquoted numbers only; a text input takes quoted text, and also an unquoted
value as the text it is (what most CSV writers produce for text that needs no quotes). A row is
one line, as in JSON Lines.

The fields are split and typed by `csv_typing`.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from pipeline.data.batches import RecordBatch
from pipeline.data.dead_letters import Reason, Rejection
from pipeline.data.decoders.arrow_columns import csv_instances
from pipeline.data.decoders.base import Decoded, dead_letters
from pipeline.data.decoders.csv_typing import header_columns, split_csv_line, typed
from pipeline.data.instances import Feeding, InstanceBuilder


class CsvDecoder:
    def __init__(self, feeding: Feeding):
        self._feeding = feeding
        self._text_inputs = {spec.name for spec in feeding.inputs if spec.dtype == "string"}

    def decode(self, batch: RecordBatch) -> Decoded:
        fast = csv_instances(self._feeding, batch)
        if fast is not None:
            return Decoded([fast])
        builder = InstanceBuilder(self._feeding, batch)
        columns = header_columns(batch.header)
        for position, payload in enumerate(batch.payloads):
            fields = csv_record(payload, columns, self._text_inputs)
            if isinstance(fields, Rejection):
                builder.reject(position, fields)
            else:
                builder.add(position, fields)
        return Decoded(builder.batches(), dead_letters(batch, builder.rejections))


def csv_record(payload: bytes, columns: list[str] | None, text_inputs: AbstractSet[str]) -> dict[str, Any] | Rejection:
    """One CSV line's fields by column name, typed by Vertex AI's rule (the columns of text inputs kept as
    text), or why it has none."""
    line = payload.strip(b"\r\n")
    if not line.strip():
        return Rejection(Reason.EMPTY, "record is empty or blank")
    if columns is None:
        return Rejection(Reason.BAD_CSV, "the file has no header row naming its columns")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejection(Reason.NOT_UTF8, f"record is not UTF-8 text ({error.reason} at byte {error.start})")
    fields = split_csv_line(text)
    if fields is None:
        return Rejection(Reason.BAD_CSV, "broken quoting: a quote inside an unquoted value, or one never closed")
    if len(fields) != len(columns):
        return Rejection(Reason.BAD_CSV, f"{len(fields)} values, but the header names {len(columns)} columns")
    return {
        name: (value if name in text_inputs else typed(value, quoted))
        for name, (value, quoted) in zip(columns, fields, strict=True)
    }
