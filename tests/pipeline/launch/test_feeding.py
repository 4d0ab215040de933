"""Launch-time plans: what the prediction table holds, refused where two columns would share a name."""

from __future__ import annotations

import pytest

from pipeline.data.instances import KEY_INT, Feeding
from pipeline.errors import ModelError
from pipeline.launch.feeding import row_layout
from pipeline.model.files import ModelFormat
from pipeline.model.signatures import ModelSignature, TensorSpec

SCORES = TensorSpec("scores", "float32", (3,))
SIGNATURE = ModelSignature(ModelFormat.SAVED_MODEL, (TensorSpec("x", "float32", (4,)),), (SCORES,), "gs://b/model")


def feeding(*included: str) -> Feeding:
    return Feeding(SIGNATURE.inputs, "key", KEY_INT, included_fields=included)


def test_included_fields_follow_the_prediction_columns():
    plan = row_layout(SIGNATURE, feeding("island", "note"), {"island": "STRING"})
    names = [field["name"] for field in plan.schema()["fields"]]
    assert names == ["key", "prediction", "confidence", "pred0", "pred1", "pred2", "island", "note"]


@pytest.mark.parametrize("clash", ["key", "prediction", "Confidence", "pred2"])
def test_an_included_field_named_like_a_prediction_column_is_refused(clash):
    with pytest.raises(ModelError, match=f"--included_fields: {clash} would overwrite"):
        row_layout(SIGNATURE, feeding(clash), {})
