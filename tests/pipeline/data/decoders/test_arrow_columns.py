"""The vectorised Arrow paths of JSON Lines and CSV: exactly what the per-record path gives, and taken."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.batches import RecordBatch
from pipeline.data.decoders import decoder_for
from pipeline.data.decoders.arrow_columns import csv_instances, json_instances
from pipeline.data.instances import KEY_INT, Feeding
from pipeline.model.signatures import TensorSpec
from tests.pipeline.data.decoders.tabular import TABULAR

islands = st.sampled_from(["Dream", "Biscoe", "Torgersen", "", "a,b", 'say "x"', "7", " Dream ", "true"])


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


odd_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from(["1.5", "", "NA", "x", None, True])
)


# Records the vectorised paths are documented to take whole: text without surrounding whitespace,
# quotes or commas (CSV quoting is Vertex AI's text marker, which Arrow cannot see), no empty values.
plain_islands = st.sampled_from(["Dream", "Biscoe", "Torgersen", "7", "true"])


def tabular_record(islands_drawn):
    return st.fixed_dictionaries(
        {
            "key": st.integers(0, 2**62),
            "island": islands_drawn,
            "length": st.one_of(finite, st.integers(-(10**6), 10**6)),
            "count": st.integers(-(10**6), 10**6),
            "vector": st.lists(finite, min_size=2, max_size=2),
            "note": st.one_of(st.integers(-5, 5), finite, st.sampled_from(["x", "2024-01-01", " 7 ", True, None])),
        }
    )


plain = tabular_record(plain_islands)
well_formed = tabular_record(islands)


damaged = st.fixed_dictionaries(
    {"key": st.one_of(st.integers(0, 10**9), st.sampled_from(["k", None])), "island": st.one_of(islands, st.none())},
    optional={"length": odd_numbers, "count": odd_numbers, "vector": st.lists(odd_numbers, max_size=3)},
)


records = st.one_of(well_formed, well_formed, well_formed, damaged)


def per_record(feeding: Feeding, batch: RecordBatch, record_format: str):
    """The per-record path alone, as the decoder takes it when Arrow returns None."""
    decoder = decoder_for(record_format, feeding)
    from pipeline.data.decoders import csv_lines, json_lines

    fast = (json_lines, "json_instances") if record_format == "jsonl" else (csv_lines, "csv_instances")
    original = getattr(*fast)
    setattr(fast[0], fast[1], lambda *args: None)
    try:
        return decoder.decode(batch)
    finally:
        setattr(fast[0], fast[1], original)


def same_instances(fast, slow) -> None:
    assert not slow.dead_letters, "the fast path kept a record the per-record path rejects"
    (expected,) = slow.instances
    assert fast.keys.tolist() == expected.keys.tolist()
    assert fast.included == expected.included
    for name, array in expected.features.items():
        got = fast.features[name]
        if array.dtype == object:
            assert [value if isinstance(value, bytes) else value.encode() for value in got] == array.tolist()
        else:
            assert got.dtype == array.dtype
            np.testing.assert_array_equal(got, array)


JSON_FEEDING = Feeding(TABULAR, "key", KEY_INT, included_fields=("note", "island"))
CSV_FEEDING = Feeding(TABULAR[:3], "key", KEY_INT, included_fields=("note", "island"))
CSV_COLUMNS = ["key", "island", "length", "count", "note"]


def json_batch(rows: list[dict]) -> RecordBatch:
    return RecordBatch("in.jsonl", 1, [json.dumps(row).encode() for row in rows])


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value and "," not in value and '"' not in value else '"' + value.replace('"', '""') + '"'
    return repr(value) if isinstance(value, float) else str(value)


def csv_batch(rows: list[dict]) -> RecordBatch:
    lines = [",".join(csv_cell(row.get(name)) for name in CSV_COLUMNS).encode() for row in rows]
    return RecordBatch("in.csv", 2, lines, header=",".join(CSV_COLUMNS).encode())


PATHS = {
    "jsonl": (json_instances, JSON_FEEDING, json_batch),
    "csv": (csv_instances, CSV_FEEDING, csv_batch),
}


@pytest.mark.parametrize("record_format", ["jsonl", "csv"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(plain, min_size=1, max_size=6))
def test_the_arrow_path_takes_every_plain_batch_and_equals_the_per_record_path(record_format, rows):
    fast_path, feeding, make_batch = PATHS[record_format]
    batch = make_batch(rows)
    fast = fast_path(feeding, batch)
    assert fast is not None, "the vectorised path declined a batch it is documented to take"
    same_instances(fast, per_record(feeding, batch, record_format))


@pytest.mark.parametrize("record_format", ["jsonl", "csv"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(records, min_size=1, max_size=6))
def test_what_the_arrow_path_takes_of_any_batch_equals_the_per_record_path(record_format, rows):
    """Any records, well-formed or not: where the vectorised path takes a batch, it gives what the
    per-record path gives (it may decline: the test above proves it does not decline plain batches)."""
    fast_path, feeding, make_batch = PATHS[record_format]
    batch = make_batch(rows)
    fast = fast_path(feeding, batch)
    if fast is not None:
        same_instances(fast, per_record(feeding, batch, record_format))


@pytest.mark.parametrize("record_format", ["jsonl", "csv"])
def test_the_arrow_paths_take_the_penguins_sample(record_format):
    from tests.conftest import SAMPLES

    lines = (SAMPLES / f"penguins/penguins.{record_format}").read_bytes().splitlines()
    header, payloads = (lines[0], lines[1:]) if record_format == "csv" else (None, lines)
    feeding = Feeding(
        (
            TensorSpec("island", "string", ()),
            TensorSpec("sex", "string", ()),
            *(TensorSpec(name, "float32", ()) for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm")),
            TensorSpec("body_mass_g", "float32", ()),
        ),
        "key",
        KEY_INT,
        included_fields=("species",),
    )
    batch = RecordBatch(f"penguins.{record_format}", 1, payloads, header=header)
    fast = (json_instances if record_format == "jsonl" else csv_instances)(feeding, batch)
    assert fast is not None and len(fast) == 333
    assert fast.included[0] == {"species": "Adelie"}
    same_instances(fast, per_record(feeding, batch, record_format))


def test_infinity_which_arrow_reads_but_json_lacks_is_left_to_the_per_record_path():
    """Found by the property test above: Arrow's JSON reader takes `Infinity`, orjson (and JSON) does not."""
    batch = json_batch([{"key": 0, "island": None}, {"key": 0, "island": None, "length": float("inf")}])
    assert json_instances(JSON_FEEDING, batch) is None
    decoded = per_record(JSON_FEEDING, batch, "jsonl")
    assert [letter.reason for letter in decoded.dead_letters] == ["missing_field", "not_json"]
