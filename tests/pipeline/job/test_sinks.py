"""Sinks: the dead-letter schema, and clearing an earlier run's text output."""

from __future__ import annotations

from pipeline.job.sinks import DEAD_LETTER_SCHEMA


def test_dead_letter_schema_follows_googles_error_records():
    names = [field["name"] for field in DEAD_LETTER_SCHEMA["fields"]]
    assert {"timestamp", "payloadString", "payloadBytes", "errorMessage", "stacktrace"} <= set(names)
