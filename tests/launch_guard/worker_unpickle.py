"""Reads a staged pipeline proto the way a Dataflow worker's SDK harness does: every pickled DoFn,
CombineFn, source, transform, coder and window function is unpickled with Beam's own pickler.

    python -P worker_unpickle.py pipeline.pb

Run it in a fresh process whose only PYTHONPATH is the image's template folder (what workers
have): a pickle that refers to something only the launching process had, such as a class
defined in main.py (`__main__`), fails here instead of on the first bundle on Dataflow.
Prints how many payloads it read; exit status 1 names the first that fails.
"""

from __future__ import annotations

import base64
import bz2
import sys
import zlib

from apache_beam.internal import pickler
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2
from google.protobuf import wrappers_pb2

PICKLED_URNS = {value for name, value in vars(python_urns).items() if name.startswith("PICKLED_")}
PAYLOAD_TYPES = {
    common_urns.primitives.PAR_DO.urn: beam_runner_api_pb2.ParDoPayload,
    common_urns.composites.COMBINE_PER_KEY.urn: beam_runner_api_pb2.CombinePayload,
    common_urns.composites.COMBINE_GLOBALLY.urn: beam_runner_api_pb2.CombinePayload,
    common_urns.combine_components.COMBINE_GROUPED_VALUES.urn: beam_runner_api_pb2.CombinePayload,
    common_urns.deprecated_primitives.READ.urn: beam_runner_api_pb2.ReadPayload,
    common_urns.primitives.ASSIGN_WINDOWS.urn: beam_runner_api_pb2.WindowIntoPayload,
}


def function_specs(message):
    """Every FunctionSpec inside a proto message, however deep."""
    if isinstance(message, beam_runner_api_pb2.FunctionSpec):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            values = value.values()
        elif field.label == field.LABEL_REPEATED:
            values = value
        else:
            values = [value]
        for item in values:
            if hasattr(item, "ListFields"):
                yield from function_specs(item)


def pickled_payloads(pipeline: beam_runner_api_pb2.Pipeline):
    """(where, payload) of every pickled payload a worker may unpickle, as Beam's pickler.loads takes it."""
    components = pipeline.components
    for transform_id, transform in components.transforms.items():
        specs = [transform.spec]
        if transform.spec.urn in PAYLOAD_TYPES:
            specs += function_specs(PAYLOAD_TYPES[transform.spec.urn].FromString(transform.spec.payload))
        for spec in specs:
            if spec.urn in PICKLED_URNS:
                yield f"transform {transform.unique_name or transform_id} ({spec.urn})", spec.payload
    for coder_id, coder in components.coders.items():
        if (
            coder.spec.urn in PICKLED_URNS
        ):  # b"<class name>$<pickle>" in a BytesValue, as coders.serialize_coder writes it
            yield f"coder {coder_id}", wrappers_pb2.BytesValue.FromString(coder.spec.payload).value.split(b"$", 1)[1]
    for strategy_id, strategy in components.windowing_strategies.items():
        if strategy.window_fn.urn in PICKLED_URNS:
            yield f"windowing strategy {strategy_id}", strategy.window_fn.payload


def is_zlib(payload: bytes) -> bool:
    """Beam's pickler compresses with bz2 unless told to use zlib."""
    return base64.b64decode(payload)[:3] != b"BZh"


def raw_pickle(payload: bytes) -> bytes:
    data = base64.b64decode(payload)
    return zlib.decompress(data) if is_zlib(payload) else bz2.decompress(data)


def main(path: str) -> int:
    with open(path, "rb") as handle:
        pipeline = beam_runner_api_pb2.Pipeline.FromString(handle.read())
    count = 0
    for where, payload in pickled_payloads(pipeline):
        if b"__main__" in raw_pickle(payload):
            print(f"{where}: refers to __main__, which workers do not have", file=sys.stderr)
            return 1
        try:
            pickler.loads(payload, use_zlib=is_zlib(payload))
        except Exception as error:  # what a worker would fail with on its first bundle
            print(f"{where}: does not unpickle: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
        count += 1
    print(f"unpickled {count} payloads")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
