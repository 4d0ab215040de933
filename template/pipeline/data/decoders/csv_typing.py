"""CSV fields and Vertex AI's typing rule: unquoted values are numbers, quoted ones text.

Python's csv module cannot tell whether a field was quoted, which this rule needs, so fields are
split here with one regular expression (RFC 4180 quoting: "" inside quotes is a quote).
"""

from __future__ import annotations

import re

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
