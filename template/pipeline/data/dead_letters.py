"""The dead-letter contract of every format: why a record could not be predicted, and the row that says so.

A dead letter keeps the record's exact bytes, where it came from (`origin`, and `position` in
it), a stable reason code and a one-line message: Google's templates' error-record fields plus
`origin`, `position` and `reason`.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson


class Reason:
    """Stable reason codes of dead letters: counter names and the `reason` field."""

    NOT_UTF8 = "not_utf8"
    EMPTY = "empty_record"
    MISSING_KEY = "missing_key"
    BAD_KEY = "bad_key"
    KEY_OUT_OF_RANGE = "key_out_of_range"
    WRONG_VALUE_COUNT = "wrong_value_count"
    NON_NUMERIC = "non_numeric_value"
    NON_FINITE = "non_finite_value"
    NULL_FIELD = "null_field"
    INFERENCE_FAILED = "inference_failed"
    NON_FINITE_SCORE = "non_finite_score"
    # Formats fed to a serving signature by name (JSON Lines, CSV, TFRecord, files, table rows).
    NOT_JSON = "not_json"
    BAD_CSV = "bad_csv"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    WRONG_SHAPE = "wrong_shape"
    NOT_AN_EXAMPLE = "not_an_example"
    UNENCODABLE_OUTPUT = "unencodable_output"
    # Damaged input: the rest of a file, or of a table read, that could not be read.
    TRUNCATED_INPUT = "truncated_input"
    CORRUPT_INPUT = "corrupt_input"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    INCOMPLETE_READ = "incomplete_read"
    # A prediction row the output refused for good (BigQuery's reason and message say why).
    OUTPUT_REJECTED = "output_rejected"
    # A Python UDF raised on the record or row, or returned what cannot be fed or written (`data.udf`).
    UDF_ERROR = "udf_error"


DAMAGE_REASONS = (Reason.TRUNCATED_INPUT, Reason.CORRUPT_INPUT, Reason.CHECKSUM_MISMATCH, Reason.INCOMPLETE_READ)


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be predicted, with the reason and the original payload."""

    origin: str
    payload: bytes
    reason: str
    message: str
    stacktrace: str = ""
    timestamp: str = ""
    position: str | None = None  # where in its origin: file:line, file:index, a file's path, key=value
    code: int | None = None  # the google.rpc.Code the failure carried (a TensorFlow error's), else by reason

    def to_row(self) -> dict[str, Any]:
        """The dead-letter row: Google's error-record fields plus origin, position and reason code."""
        try:
            payload_string = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            payload_string = None
        return {
            "timestamp": self.timestamp or utc_now(),
            "origin": self.origin,
            "position": self.position,
            "reason": self.reason,
            "errorMessage": self.message,
            "payloadString": payload_string,
            "payloadBytes": base64.b64encode(self.payload).decode("ascii"),
            "stacktrace": self.stacktrace or None,
        }

    def to_json_line(self) -> str:
        return orjson.dumps(self.to_row()).decode("utf-8")


class Rejection(NamedTuple):
    """Why one record cannot be predicted: a stable reason code and a one-line message."""

    reason: str
    message: str


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
