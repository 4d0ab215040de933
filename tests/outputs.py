"""What a job wrote, read back as a user would: JSON lines from local or gs:// files, by pattern."""

from __future__ import annotations

import json
from pathlib import Path

from apache_beam.io.filesystems import FileSystems


def read_json_lines(pattern: str | Path) -> list[dict]:
    """Every JSON line of the files matching `pattern` (local or gs://), files in path order."""
    rows: list[dict] = []
    for metadata in sorted(FileSystems.match([str(pattern)])[0].metadata_list, key=lambda found: found.path):
        with FileSystems.open(metadata.path, compression_type="uncompressed") as handle:
            rows += [json.loads(line) for line in handle.read().splitlines() if line.strip()]
    return rows


def predictions_and_dead_letters(prefix: str | Path) -> tuple[list[dict], list[dict]]:
    """The prediction rows and dead letters of a text output `prefix` (default dead-letter location)."""
    return read_json_lines(f"{prefix}-*.jsonl"), read_json_lines(f"{prefix}_error_records-*.jsonl")
