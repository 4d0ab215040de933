"""The last step in a real pipeline: it runs after both writes have succeeded, and not at all when one fails."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest

from pipeline.config import TEXT_SUFFIX, IoKind
from pipeline.job.metrics import read_counts
from pipeline.job.replace import Output, ReplaceEarlierOutputs
from pipeline.job.replace_text import new_run_id, staging_prefix


def _refuse(line: str) -> str:
    raise RuntimeError(f"a write that fails: {line}")


def run(folder: Path, predictions: list[str], dead_letters: list[str], fail_dead_letters: bool = False):
    """Two text writes into this run's staging folders, then the last step, as the job's graph wires them."""
    run_id = new_run_id()
    outputs = (Output(IoKind.TEXT, str(folder / "p")), Output(IoKind.TEXT, str(folder / "p_error_records")))
    pipeline = beam.Pipeline()
    written = []
    for label, output, lines in (("predictions", outputs[0], predictions), ("dead letters", outputs[1], dead_letters)):
        lines_in = pipeline | f"Create {label}" >> beam.Create(lines)
        if fail_dead_letters and label == "dead letters":
            lines_in = lines_in | "Fail" >> beam.Map(_refuse)
        write = beam.io.WriteToText(staging_prefix(output.location, run_id), file_name_suffix=TEXT_SUFFIX)
        written.append(lines_in | f"Write {label}" >> write)
    _ = pipeline | "Replace" >> ReplaceEarlierOutputs(outputs, run_id, None, (written[0], written[1]))
    result = pipeline.run()
    result.wait_until_finish()
    return read_counts(result)


def contents(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_the_last_step_replaces_both_outputs_once_both_writes_succeeded(tmp_path):
    (tmp_path / "p-00000-of-00002.jsonl").write_text("earlier\n")
    (tmp_path / "p-00001-of-00002.jsonl").write_text("earlier\n")
    (tmp_path / "p_error_records-00000-of-00001.jsonl").write_text("an earlier dead letter\n")

    counts = run(tmp_path, ["a", "b"], [])

    assert contents(tmp_path) == {"p-00000-of-00001.jsonl": b"a\nb\n", "p_error_records-00000-of-00001.jsonl": b""}
    assert counts.replaced == {"earlier_shards_removed": 2, "temp_folders_removed": 0}


def test_a_write_that_fails_leaves_the_earlier_outputs_exactly_as_they_were(tmp_path):
    (tmp_path / "p-00000-of-00002.jsonl").write_text("earlier\n")
    (tmp_path / "p-00001-of-00002.jsonl").write_text("earlier, too\n")
    (tmp_path / "p_error_records-00000-of-00001.jsonl").write_text("an earlier dead letter\n")
    before = contents(tmp_path)

    with pytest.raises(Exception, match="a write that fails"):
        run(tmp_path, ["a", "b"], ["x"], fail_dead_letters=True)

    final = {name: data for name, data in contents(tmp_path).items() if not name.startswith("beam-temp-")}
    assert final == before
