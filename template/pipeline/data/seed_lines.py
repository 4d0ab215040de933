"""The 2017 sample's record format, `key:v0,v1,...`: its lines, and its `key, image` table rows.

Pure functions and small value types, no Beam imports, so every rule about what a valid
record is can be tested directly. Parsing is vectorised per batch (text to floats is the
hot loop of the whole job) with an exact per-line reference parser behind it: the fast path
only ever accepts what the reference accepts, and every line it cannot vouch for goes to the
reference, which names the reason a line is rejected.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from pipeline.data.dead_letters import Reason, Rejection

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_KEY = re.compile(rb"[+-]?[0-9]+")
# Bytes a well-formed value list may contain; anything else goes to the reference parser.
_VALUE_BYTES = b"0123456789.eE+-,"
_SURROUNDING_WHITESPACE = b" \t\r\n\x0b\x0c"
# Payload excerpts in error messages stay short so one dead letter cannot carry a novel.
_EXCERPT = 40


@dataclass(frozen=True)
class ParsedLines:
    """What a batch of `key:v0,...` lines parses to: the positions of the good lines in the batch,
    their keys and float32 vectors, and a rejection for each bad line."""

    positions: np.ndarray  # int64, shape (n,): indices into the batch
    keys: np.ndarray  # int64, shape (n,)
    images: np.ndarray  # float32, shape (n, width)
    rejections: list[tuple[int, Rejection]]


class _Rejected(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _excerpt(value: bytes | str) -> str:
    text = value if isinstance(value, str) else value.decode("utf-8", "backslashreplace")
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def _split_key(payload: bytes) -> tuple[int, bytes]:
    """Checks the line's envelope and key; returns (key, value bytes) or raises _Rejected."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Rejected(Reason.NOT_UTF8, f"record is not UTF-8 text ({error.reason} at byte {error.start})") from None
    line = payload.strip(_SURROUNDING_WHITESPACE)
    if not line:
        raise _Rejected(Reason.EMPTY, "record is empty or blank")
    key_part, colon, values = line.partition(b":")
    if not colon:
        raise _Rejected(Reason.MISSING_KEY, "no ':' separating the key from the values")
    key_part = key_part.strip(_SURROUNDING_WHITESPACE)
    if not _KEY.fullmatch(key_part):
        raise _Rejected(Reason.BAD_KEY, f"key {_excerpt(key_part)!r} is not an integer")
    key = int(key_part)
    if not INT64_MIN <= key <= INT64_MAX:
        raise _Rejected(Reason.KEY_OUT_OF_RANGE, f"key {_excerpt(key_part)!r} does not fit in a 64-bit integer")
    return key, values


def value_count(payload: bytes) -> int | None:
    """How many values a record carries, or None if its envelope (text, key) is already wrong."""
    try:
        _, values = _split_key(payload)
    except _Rejected:
        return None
    return values.count(b",") + 1


def _parse_values(values: bytes, width: int) -> np.ndarray:
    """The reference value parser: exactly `width` finite decimal numbers, comma-separated."""
    fields = values.split(b",")
    if len(fields) != width:
        raise _Rejected(Reason.WRONG_VALUE_COUNT, f"expected {width} values, got {len(fields)}")
    parsed = np.empty(width, dtype=np.float64)
    for position, field in enumerate(fields):
        try:
            if b"_" in field:  # float() reads '1_0' as 10; a data file should not
                raise ValueError(field)
            parsed[position] = float(field)
        except ValueError:
            raise _Rejected(
                Reason.NON_NUMERIC, f"value {position} ({_excerpt(field.strip())!r}) is not a number"
            ) from None
    with np.errstate(over="ignore"):  # overflow to inf is reported below, as a reason
        image = parsed.astype(np.float32)
    if not np.isfinite(image).all():
        position = int(np.flatnonzero(~np.isfinite(image))[0])
        raise _Rejected(
            Reason.NON_FINITE,
            f"value {position} ({_excerpt(fields[position].strip())!r}) is not finite in float32",
        )
    return image


def parse_line(payload: bytes, width: int) -> tuple[int, np.ndarray] | Rejection:
    """The reference parser: one line into (key, float32 vector of `width` values), or why not."""
    try:
        key, values = _split_key(payload)
        return key, _parse_values(values, width)
    except _Rejected as rejected:
        return Rejection(rejected.reason, rejected.message)


_COMMAS_TO_NEWLINES = bytes.maketrans(b",", b"\n")  # translate: a third faster than replace
_ARROW_READ = pa_csv.ReadOptions(column_names=["v"], use_threads=False, block_size=1 << 24)
_ARROW_PARSE = pa_csv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False, ignore_empty_lines=False)
_ARROW_CONVERT = pa_csv.ConvertOptions(
    column_types={"v": pa.float64()}, null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False
)


def _arrow_parse(value_lists: Sequence[bytes], width: int) -> np.ndarray | None:
    """Parses well-shaped value lists in one vectorised call; None if any value is not a number.

    Every value becomes one row of a single-column CSV, so the C++ parser does the work of
    `float()` for the whole batch at once. Parsing to float64 and then casting gives the
    same float32 as the reference path.
    """
    blob = b"\n".join(value_lists).translate(_COMMAS_TO_NEWLINES)
    try:
        column = pa_csv.read_csv(
            io.BytesIO(blob), read_options=_ARROW_READ, parse_options=_ARROW_PARSE, convert_options=_ARROW_CONVERT
        ).column(0)
    except pa.ArrowInvalid:
        return None
    if len(column) != len(value_lists) * width:
        return None
    with np.errstate(over="ignore"):  # values beyond float32 become inf and go to the reference parser
        return column.to_numpy().astype(np.float32).reshape(len(value_lists), width)


def _parse_candidates(
    candidates: list[tuple[int, int, bytes]], width: int
) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """Yields (index, key, image or None); bisects the batch when one value spoils it."""
    images = _arrow_parse([values for _, _, values in candidates], width)
    if images is not None:
        finite = np.isfinite(images).all(axis=1)
        for (index, key, _), image, ok in zip(candidates, images, finite, strict=True):
            yield index, key, image if ok else None
    elif len(candidates) == 1:
        yield candidates[0][0], candidates[0][1], None
    else:
        middle = len(candidates) // 2
        yield from _parse_candidates(candidates[:middle], width)
        yield from _parse_candidates(candidates[middle:], width)


def parse_lines(payloads: Sequence[bytes], width: int) -> ParsedLines:
    """Parses a batch of lines; the result is exactly what `parse_line` gives one by one.

    Lines whose shape is plainly right (integer key, `width - 1` commas, only number bytes)
    are parsed together; the rest, and any line the vectorised parse refuses, go through
    `parse_line`, which also names the reason for a rejection.
    """
    parsed: list[tuple[int, np.ndarray] | None] = [None] * len(payloads)
    candidates: list[tuple[int, int, bytes]] = []
    for index, payload in enumerate(payloads):
        # A plainly right line is ASCII throughout (its key and values are checked byte by byte
        # here), so it needs no UTF-8 decode; anything else is the reference parser's to judge.
        key_part, colon, values = payload.partition(b":")
        key_text = key_part.strip(_SURROUNDING_WHITESPACE)
        if not colon or not _KEY.fullmatch(key_text):
            continue
        values = values.strip(_SURROUNDING_WHITESPACE)
        if values.count(b",") == width - 1 and values and not values.translate(None, _VALUE_BYTES):
            key = int(key_text)
            if INT64_MIN <= key <= INT64_MAX:
                candidates.append((index, key, values))
    if candidates:
        for index, key, image in _parse_candidates(candidates, width):
            if image is not None:
                parsed[index] = (key, image)

    rejections: list[tuple[int, Rejection]] = []
    good: list[tuple[int, int, np.ndarray]] = []
    for index, payload in enumerate(payloads):
        entry = parsed[index]
        if entry is None:
            outcome = parse_line(payload, width)
            if isinstance(outcome, Rejection):
                rejections.append((index, outcome))
                continue
            entry = outcome
        good.append((index, *entry))
    return ParsedLines(
        positions=np.fromiter((index for index, _, _ in good), dtype=np.int64, count=len(good)),
        keys=np.fromiter((key for _, key, _ in good), dtype=np.int64, count=len(good)),
        images=np.stack([image for _, _, image in good]) if good else np.empty((0, width), dtype=np.float32),
        rejections=rejections,
    )


SEED_IMAGE_COLUMN = "image"


def row_to_line(row: dict[str, Any], key_column: str = "key") -> bytes | Rejection:
    """A `key INTEGER, image STRING` row (what the 2017 sample's `bq load` makes) as the line it was loaded from."""
    key, image = row.get(key_column), row.get(SEED_IMAGE_COLUMN)
    if key is None or image is None:
        missing = " and ".join(name for name, value in ((key_column, key), (SEED_IMAGE_COLUMN, image)) if value is None)
        return Rejection(Reason.NULL_FIELD, f"{missing} is NULL")
    return f"{key}:{image}".encode()
