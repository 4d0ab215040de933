"""The 2017 sample's lines and its key, image table rows, decoded as its lines."""

from __future__ import annotations

from pipeline.data.batches import RowBatch
from pipeline.data.decoders import BIGQUERY_KEY_VALUES
from pipeline.data.instances import KEY_INT, Feeding
from pipeline.model.signatures import TensorSpec
from tests.pipeline.data.decoders.tabular import decode


def test_the_seeds_rows_carry_their_included_columns():
    seed = Feeding((TensorSpec("image", "float32", (2,)),), "key", KEY_INT, included_fields=("label", "batch"))
    rows = [
        {"key": 4, "image": "0,0.5", "label": 7, "batch": "a"},
        {"key": 5, "image": "1", "label": 1, "batch": "b"},  # too few values: a dead letter
        {"key": 6, "image": "1,2", "label": None, "batch": "c"},
    ]
    (instances,) = decode(BIGQUERY_KEY_VALUES, RowBatch("p:d.images", rows), seed).instances
    assert instances.keys.tolist() == [4, 6]
    assert instances.included == [{"label": 7, "batch": "a"}, {"label": None, "batch": "c"}]
