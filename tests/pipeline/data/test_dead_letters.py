"""The dead-letter row: the exact bytes, where the record was, why."""

from __future__ import annotations

import base64

import orjson

from pipeline.data.batches import RecordBatch
from pipeline.data.dead_letters import Reason
from pipeline.data.seed_lines import parse_line

WIDTH = 4


def test_dead_letter_row_keeps_text_and_base64_of_the_payload():
    batch = RecordBatch("test.txt", 1, [b"bad line", b"\xff\xfe:1"])
    text_row = batch.dead_letter(0, parse_line(b"bad line", WIDTH)).to_row()
    assert text_row["payloadString"] == "bad line"
    assert base64.b64decode(text_row["payloadBytes"]) == b"bad line"
    assert text_row["reason"] == Reason.MISSING_KEY
    assert text_row["origin"] == "test.txt" and text_row["position"] == "test.txt:1"
    assert text_row["timestamp"].endswith("+00:00")

    binary_row = orjson.loads(batch.dead_letter(1, parse_line(b"\xff\xfe:1", WIDTH)).to_json_line())
    assert binary_row["payloadString"] is None
    assert base64.b64decode(binary_row["payloadBytes"]) == b"\xff\xfe:1"
