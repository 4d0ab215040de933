"""The tabular signature the decoder tests feed: a string, a float, an integer and a float vector."""

from __future__ import annotations

from pipeline.data.decoders import Decoded, decoder_for
from pipeline.data.instances import KEY_INT, Feeding
from pipeline.model.signatures import TensorSpec

TABULAR = (
    TensorSpec("island", "string", ()),
    TensorSpec("length", "float32", ()),
    TensorSpec("count", "int64", ()),
    TensorSpec("vector", "float32", (2,)),
)
FEEDING = Feeding(TABULAR, "key", KEY_INT)


def decode(record_format: str, batch, feeding: Feeding = FEEDING) -> Decoded:
    return decoder_for(record_format, feeding).decode(batch)
