"""Table rows fed by column name."""

from __future__ import annotations

from pipeline.data.batches import RowBatch
from pipeline.data.decoders import BIGQUERY_KEY_VALUES, BIGQUERY_ROWS
from pipeline.data.instances import KEY_INT, KEY_STR, Feeding
from pipeline.model.signatures import TensorSpec
from tests.pipeline.data.decoders.tabular import TABULAR, decode


def test_table_rows_feed_by_column_and_the_seeds_rows_as_its_lines():
    feeding = Feeding(TABULAR[:3], "key", KEY_STR)
    rows = [
        {"key": "a", "island": "Dream", "length": 1.5, "count": 3},
        {"key": "b", "island": None, "length": 1.0, "count": 1},
    ]
    decoded = decode(BIGQUERY_ROWS, RowBatch("p:d.t", rows), feeding)
    assert decoded.instances[0].keys.tolist() == ["a"]
    assert [(letter.origin, letter.reason) for letter in decoded.dead_letters] == [("p:d.t", "missing_field")]
    seed = Feeding((TensorSpec("image", "float32", (2, 2, 1)),), "key", KEY_INT)
    seed_rows = [{"key": 4, "image": "0,0.5,1,0"}, {"key": 5, "image": None}, {"key": 6, "image": "1,2"}]
    decoded = decode(BIGQUERY_KEY_VALUES, RowBatch("p:d.images", seed_rows), seed)
    assert decoded.instances[0].keys.tolist() == [4] and decoded.instances[0].features["image"].shape == (1, 2, 2, 1)
    assert sorted(letter.reason for letter in decoded.dead_letters) == ["null_field", "wrong_value_count"]
