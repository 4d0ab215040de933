"""Accuracy against labels, from IDX label files or key,label lines."""

from __future__ import annotations

import gzip
import struct

import pytest

from pipeline.evaluate import evaluate, main, read_labels, read_predictions
from tests.conftest import SAMPLE_LABELS


def test_reads_the_official_idx_labels():
    labels = read_labels(str(SAMPLE_LABELS))
    assert len(labels) == 10_000
    assert [labels[key] for key in range(10)] == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # MNIST test set's first labels


def test_reads_key_label_lines_and_gzipped_idx(tmp_path):
    (tmp_path / "labels.csv").write_text("5,3\n-2,1\n\n")
    assert read_labels(str(tmp_path / "labels.csv")) == {5: 3, -2: 1}
    (tmp_path / "labels.idx.gz").write_bytes(gzip.compress(struct.pack(">ii", 2049, 3) + bytes([4, 5, 6])))
    assert read_labels(str(tmp_path / "labels.idx.gz")) == {0: 4, 1: 5, 2: 6}
    (tmp_path / "bad.csv").write_text("5;3\n")
    with pytest.raises(ValueError, match=r"bad\.csv:1"):
        read_labels(str(tmp_path / "bad.csv"))


def test_accuracy_counts_only_labelled_keys_in_range():
    result = evaluate({1: 3, 2: 4, 3: 5, 9: 0}, {1: 3, 2: 0, 3: 5, 4: 1, 9: 0}, 1, 4)
    assert (result.evaluated, result.correct, result.missing) == (3, 2, 1)
    assert result.accuracy == pytest.approx(2 / 3)


def test_command_line(tmp_path, capsys):
    (tmp_path / "p-00000-of-00001.jsonl").write_text('{"key": 0, "prediction": 7}\n{"key": 1, "prediction": 1}\n')
    assert sorted(read_predictions(str(tmp_path / "p-*.jsonl"))) == [(0, 7), (1, 1)]
    assert main(["--predictions", str(tmp_path / "p-*.jsonl"), "--labels", str(SAMPLE_LABELS), "--keys", "0:1"]) == 0
    assert "Accuracy on keys 0..1: 50.00% (1 of 2 correct" in capsys.readouterr().out
