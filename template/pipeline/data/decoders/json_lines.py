"""JSON Lines: each line an object (fields fed to the signature's inputs by name, others ignored)
or an array (the whole input of a single-input model), as Vertex AI batch prediction takes them."""

from __future__ import annotations

import orjson

from pipeline.data.batches import RecordBatch
from pipeline.data.dead_letters import Reason, Rejection
from pipeline.data.decoders.arrow_columns import json_instances
from pipeline.data.decoders.base import Decoded, dead_letters
from pipeline.data.instances import Feeding, InstanceBuilder


def parse_json_line(payload: bytes) -> object | Rejection:
    if not payload.strip():
        return Rejection(Reason.EMPTY, "record is empty or blank")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        text = str(error)
        reason = Reason.NOT_UTF8 if "UTF-8" in text else Reason.NOT_JSON
        return Rejection(reason, f"not a JSON value: {text.splitlines()[0][:200]}")


class JsonLinesDecoder:
    def __init__(self, feeding: Feeding):
        self._feeding = feeding
        self._single = feeding.inputs[0].name if len(feeding.inputs) == 1 else None

    def decode(self, batch: RecordBatch) -> Decoded:
        fast = json_instances(self._feeding, batch)
        if fast is not None:
            return Decoded([fast])
        builder = InstanceBuilder(self._feeding, batch)
        for position, payload in enumerate(batch.payloads):
            value = parse_json_line(payload)
            if isinstance(value, Rejection):
                builder.reject(position, value)
            elif isinstance(value, dict):
                builder.add(position, value)
            elif isinstance(value, list) and self._single is not None:
                builder.add(position, {self._single: value}, as_instance=True)
            elif isinstance(value, list):
                names = ", ".join(self._feeding.field_names)
                message = f"a JSON array feeds a model with one input; this one takes {names}: give an object"
                builder.reject(position, Rejection(Reason.WRONG_TYPE, message))
            else:
                builder.reject(position, Rejection(Reason.WRONG_TYPE, "a JSON line must be an object or an array"))
        return Decoded(builder.batches(), dead_letters(batch, builder.rejections))
