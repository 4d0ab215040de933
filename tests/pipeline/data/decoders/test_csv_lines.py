"""CSV records fed by column name, per record."""

from __future__ import annotations

from pipeline.data.batches import RecordBatch
from pipeline.data.instances import KEY_INT, Feeding
from tests.pipeline.data.decoders.tabular import TABULAR, decode


def test_csv_typing_by_vertex_ais_rule():
    header = b"key,island,length,count,vector"
    feeding = Feeding(TABULAR[:3], "key", KEY_INT)
    lines = [b'1,"Dream",40.5,2,x', b"2,Dream,40.5,2,x", b'3,"Dream","40.5",2,x', b"4,Dream,40.5", b"5,Dream,,2,x"]
    decoded = decode("csv", RecordBatch("in.csv", 2, lines, header=header), feeding)
    assert [batch.keys.tolist() for batch in decoded.instances] == [[1, 2]]
    assert [(letter.payload[:1], letter.reason) for letter in decoded.dead_letters] == [
        (b"3", "wrong_type"),
        (b"4", "bad_csv"),
        (b"5", "missing_field"),
    ]
