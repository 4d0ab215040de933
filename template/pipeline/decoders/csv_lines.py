"""CSV: a header row names the columns; each column feeds the signature input of the same name.

Vertex AI's rule types the values: unquoted values are numbers, quoted ones text. A numeric
input therefore takes unquoted numbers only; a text input takes quoted text, and also an unquoted
value as the text it is (what most CSV writers produce for text that needs no quotes). A row is
one line, as in JSON Lines.

Python's csv module cannot tell whether a field was quoted, which this rule needs, so fields are
split here with one regular expression (RFC 4180 quoting: "" inside quotes is a quote).
"""

from __future__ import annotations

import re

from pipeline.batches import RecordBatch
from pipeline.decoders.arrow_columns import csv_instances
from pipeline.decoders.base import Decoded, dead_letters
from pipeline.instances import Feeding, InstanceBuilder
from pipeline.records import Reason, Rejection

_FIELD = re.compile(r'[ \t]*(?:"((?:[^"]|"")*)"[ \t]*|([^,"]*))(,|$)')
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def split_csv_line(line: str) -> list[tuple[str, bool]] | None:
    """(value, quoted) of each field, or None if the quoting is broken."""
    fields: list[tuple[str, bool]] = []
    position = 0
    while True:
        match = _FIELD.match(line, position)
        if match is None:
            return None
        quoted, plain, separator = match.groups()
        fields.append((quoted.replace('""', '"'), True) if quoted is not None else (plain.strip(), False))
        if not separator:
            return fields if match.end() == len(line) else None
        position = match.end()


def typed(value: str, quoted: bool) -> object:
    """A value by Vertex AI's rule: quoted is text; unquoted is a number when it reads as one,
    null when empty, and otherwise the text itself (refused later where a number is needed)."""
    if quoted:
        return value
    if not value:
        return None
    if _INTEGER.fullmatch(value):
        return int(value)
    if _NUMBER.fullmatch(value):
        return float(value)
    return value


def header_columns(header: bytes | None) -> list[str] | None:
    if header is None:
        return None
    fields = split_csv_line(header.decode("utf-8", "replace").strip("\r\n"))
    return [name for name, _ in fields] if fields else None


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
            rejection = self._add(builder, position, payload, columns)
            if rejection is not None:
                builder.reject(position, rejection)
        return Decoded(builder.batches(), dead_letters(batch, builder.rejections))

    def _add(self, builder: InstanceBuilder, position: int, payload: bytes, columns: list[str] | None):
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
        builder.add(
            position,
            {
                name: (value if name in self._text_inputs else typed(value, quoted))
                for name, (value, quoted) in zip(columns, fields, strict=True)
            },
        )
        return None
