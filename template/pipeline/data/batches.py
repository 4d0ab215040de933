"""The units of work of the pipeline: a batch of records as read, the instances decoded from it,
and the model's outputs for them.

A batch is the unit end to end (reading, decoding, the model call, formatting rows), so that
every step runs vectorised and no per-record object is made on the fast path. An instance
keeps only its position in the batch it came from: its origin and exact payload are looked up
there when it must become a dead letter.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from pipeline.data.dead_letters import DeadLetter, Rejection, utc_now


class _DeadLetters:
    """A source batch's dead letters: the origin and exact payload of the record at an index."""

    def origin_of(self, index: int) -> str:
        raise NotImplementedError

    def payload_of(self, index: int) -> bytes:
        raise NotImplementedError

    def locate(self, index: int) -> str | None:
        """Where the record at `index` is in its origin, for a person looking for it."""
        raise NotImplementedError

    def dead_letter(self, index: int, rejection: Rejection, stacktrace: str = "", timestamp: str = "") -> DeadLetter:
        return DeadLetter(
            self.origin_of(index),
            self.payload_of(index),
            rejection.reason,
            rejection.message,
            stacktrace,
            timestamp or utc_now(),
            self.locate(index),
        )


@dataclass(frozen=True)
class RecordBatch(_DeadLetters):
    """Records of one file read together (or whole files, one record each), as bytes.

    `start` is the position of the first record: its line number (1-based) in a line format, its
    index (0-based) in a TFRecord file; with `by_byte`, the byte offset where its line starts (the
    lines of a file read in several ranges, whose numbers a range after the first cannot know: each
    line of such a file, the first range's too, is then `file@byte`).
    For whole files each record has its own origin, its path. A CSV file's header line rides along,
    so that every batch can be decoded on its own.
    """

    origin: str
    start: int
    payloads: list[bytes]
    header: bytes | None = None
    origins: tuple[str, ...] | None = None
    locations: tuple[str | None, ...] | None = None  # where each record is: a table row's key, a message's id
    by_byte: bool = False
    skew: int = 0  # with by_byte: the bytes of the first line its payload lacks (a byte-order mark)

    def __len__(self) -> int:
        return len(self.payloads)

    def origin_of(self, index: int) -> str:
        return self.origins[index] if self.origins is not None else self.origin

    def payload_of(self, index: int) -> bytes:
        return self.payloads[index]

    def position_of(self, index: int) -> str:
        """The key of a record that has none: file:line, file:index, the file's path, or the message's id."""
        if self.origins is not None:
            return self.origins[index]
        if self.locations is not None and (location := self.locations[index]) is not None:
            return location
        if self.by_byte:
            return f"{self.origin}@{self._line_starts[index]}"
        return f"{self.origin}:{self.start + index}"

    @cached_property
    def _line_starts(self) -> list[int]:
        """Where each line starts, in bytes from its file's start: each payload is a line less its b"\\n"."""
        starts = list(accumulate((len(payload) + 1 for payload in self.payloads[:-1]), initial=self.start + self.skew))
        starts[0] = self.start
        return starts

    def locate(self, index: int) -> str | None:
        return self.locations[index] if self.locations is not None else self.position_of(index)


@dataclass(frozen=True)
class RowBatch(_DeadLetters):
    """Rows of a BigQuery table or query, or of an Avro file, as dicts of column values.

    `start` is the row index (0-based) in its file of the first row of a file's batch; a table's rows
    come in no set order and have none.
    """

    origin: str
    rows: list[dict[str, Any]]
    key_column: str | None = None  # the column that identifies a row, if the job has one
    start: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def origin_of(self, index: int) -> str:
        return self.origin

    def payload_of(self, index: int) -> bytes:
        return _json_row(self.rows[index])

    def position_of(self, index: int) -> str:
        return f"{self.origin}:{index if self.start is None else self.start + index}"

    def locate(self, index: int) -> str | None:
        """`key_column=value`, else a file row's position (a table's rows come in no set order, so only
        their key finds them)."""
        if self.key_column is not None and self.rows[index].get(self.key_column) is not None:
            return f"{self.key_column}={self.rows[index][self.key_column]}"
        return None if self.start is None else self.position_of(index)


@dataclass(frozen=True)
class ColumnBatch(_DeadLetters):
    """Rows of one Parquet row-group slice as the Arrow table read, the columns the job needs.

    `start` is the row index (0-based) in its file of the table's first row. The rows stay columns on
    the fast path; `rows()` and `payload_of` make dicts only where a record needs a reason.
    """

    origin: str
    start: int
    table: pa.Table
    key_column: str | None = None  # the column that identifies a row, if the job has one

    def __len__(self) -> int:
        return self.table.num_rows

    def origin_of(self, index: int) -> str:
        return self.origin

    def row(self, index: int) -> dict[str, Any]:
        return self.table.slice(index, 1).to_pylist()[0]

    def rows(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()

    def payload_of(self, index: int) -> bytes:
        return _json_row(self.row(index))

    def position_of(self, index: int) -> str:
        return f"{self.origin}:{self.start + index}"

    def locate(self, index: int) -> str | None:
        """`key_column=value` where the job is keyed and the row has a key, else `<file>:<row>`."""
        if self.key_column is not None and self.key_column in self.table.column_names:
            key = self.table[self.key_column][index].as_py()
            if key is not None:
                return f"{self.key_column}={key}"
        return self.position_of(index)


def _json_row(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, default=_json_value, option=orjson.OPT_NON_STR_KEYS)


def _json_value(value: Any) -> str:
    """A column value JSON lacks: BYTES as base64 (as BigQuery's JSON export writes them), others as text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


SourceBatch = RecordBatch | RowBatch | ColumnBatch


@dataclass(frozen=True)
class InstanceBatch:
    """Instances ready for the model: keys, one array per signature input, and where each came from.

    `features` are batch-major arrays in the signature's dtype and shape; `positions[i]` is the
    index in `source` of instance i; `included[i]` holds the input fields copied to its output row.
    """

    keys: np.ndarray  # int64, or object (str) for keys that are not integers
    features: dict[str, np.ndarray]
    source: SourceBatch
    positions: np.ndarray  # int64
    included: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def dead_letter(self, index: int, rejection: Rejection, stacktrace: str = "", timestamp: str = "") -> DeadLetter:
        return self.source.dead_letter(int(self.positions[index]), rejection, stacktrace, timestamp)

    def slice(self, start: int, stop: int) -> InstanceBatch:
        """The instances from `start` to `stop` (views of this batch's arrays, no copies)."""
        return InstanceBatch(
            self.keys[start:stop],
            {name: array[start:stop] for name, array in self.features.items()},
            self.source,
            self.positions[start:stop],
            None if self.included is None else self.included[start:stop],
        )

    def select(self, mask: np.ndarray) -> InstanceBatch:
        """The instances where `mask` is true."""
        included = (
            None if self.included is None else [row for row, keep in zip(self.included, mask, strict=True) if keep]
        )
        return InstanceBatch(
            self.keys[mask],
            {name: array[mask] for name, array in self.features.items()},
            self.source,
            self.positions[mask],
            included,
        )


@dataclass(frozen=True)
class ScoredBatch:
    """The model's outputs for an InstanceBatch, one batch-major array per output name."""

    instances: InstanceBatch
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    model_version: int | None = None  # the version that scored them, for a versioned model folder

    def __len__(self) -> int:
        return len(self.instances)

    def select(self, mask: np.ndarray) -> ScoredBatch:
        outputs = {name: array[mask] for name, array in self.outputs.items()}
        return ScoredBatch(self.instances.select(mask), outputs, self.model_version)
