"""Clearing an earlier run: text shards and Beam temp folders of exactly this prefix."""

from __future__ import annotations

from pipeline.launch.cleanup import clear_text_output


def test_clear_text_output_removes_only_this_prefixs_shards_and_temp_files(tmp_path):
    ours = [
        tmp_path / "predictions-00000-of-00002.jsonl",
        tmp_path / "predictions-00001-of-00002.jsonl",
        tmp_path / f"beam-temp-predictions-{'1a2b' * 8}" / "abc.predictions.jsonl",
    ]
    others = [
        tmp_path / "predictions_error_records-00000-of-00001.jsonl",
        tmp_path / "predictions-notes.txt",
        tmp_path / "beam-temp-predictions_error_records-9f" / "x.jsonl",
        tmp_path / "other-00000-of-00001.jsonl",
        tmp_path / "predictions-2024-00000-of-00001.jsonl",  # another job's output prefix
        tmp_path / f"beam-temp-predictions-2024-{'9f' * 16}" / "in-flight.jsonl",  # its temp files
    ]
    for path in ours + others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    removed = clear_text_output(str(tmp_path / "predictions"))
    assert {str(path) for path in ours[:2]} | {str(ours[2])} <= set(removed)
    assert not any(path.exists() for path in ours)
    assert all(path.exists() for path in others)
    assert clear_text_output(str(tmp_path / "predictions")) == []
