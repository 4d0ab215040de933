"""Records through a UDF before the model: each format's records as dicts, what the UDF returns fed by name,
splits and drops counted, and every failure a dead letter of the source record naming the UDF's line."""

from __future__ import annotations

import base64
import json

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.batches import ColumnBatch, RecordBatch, RowBatch
from pipeline.data.dead_letters import Rejection
from pipeline.data.decoders import decoder_for
from pipeline.data.decoders.udf_records import UdfRecordsDecoder, UdfRows, source_records
from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR, KEY_STR_OR_POSITION, Feeding, InstanceBuilder
from pipeline.data.udf import UdfCode, load
from pipeline.model.signatures import TensorSpec
from tests.pipeline.data.decoders.tabular import FEEDING as TABULAR_FEEDING

SCALARS = (
    TensorSpec("island", "string", ()),
    TensorSpec("mass_g", "float32", ()),
    TensorSpec("count", "int64", ()),
    TensorSpec("flag", "bool", ()),
)
FEEDING = Feeding(SCALARS, "key", KEY_INT)
SOURCE = """\
def identity(record):
    return record


def grams(record):
    record["mass_g"] = record.pop("mass_kg") * 1000
    return record


def fussy(record):
    if record["key"] == 2:
        return record["missing"]
    if record["key"] == 3:
        return None
    if record["key"] == 4:
        return [dict(record, key=40), dict(record, key=41)]
    if record["key"] == 5:
        return "not a record"
    if record["key"] == 6:
        return [record, 7]
    if record["key"] == 7:
        return []
    return record


def halves(record):
    return [dict(record, mass_g=record["mass_g"] / 2), dict(record, mass_g=record["mass_g"] / 2)]


def spoil(record):
    record["mass_g"] = "heavy"
    return record
"""


def udf(name: str, source: str = SOURCE) -> UdfCode:
    return UdfCode("udf.py", source, before=name)


def record(key, **changes) -> dict:
    fields = {"key": key, "island": "Biscoe", "mass_g": 3750.0 + key, "count": 2, "flag": True, "extra": [1, "x"]}
    fields.update(changes)
    return fields


def lines(*records) -> RecordBatch:
    return RecordBatch("in.jsonl", 1, [json.dumps(one).encode() for one in records])


def decode(name: str, batch, feeding: Feeding = FEEDING, record_format: str = "jsonl"):
    return decoder_for(record_format, feeding, udf(name)).decode(batch)


def plain(item):
    """A fed value as plain Python, text as str (one path feeds text as str, the other as bytes)."""
    if isinstance(item, (np.ndarray, np.generic)):
        item = item.tolist()
    if isinstance(item, list):
        return [plain(one) for one in item]
    return item.decode() if isinstance(item, bytes) else item


def features(decoded) -> dict:
    """Key -> each input's value as plain Python, over every instance batch."""
    found = {}
    for instances in decoded.instances:
        for index, key in enumerate(instances.keys.tolist()):
            found[key] = {name: plain(array[index]) for name, array in instances.features.items()}
    return found


def test_an_identity_udf_feeds_what_the_plain_decoder_feeds():
    batch = lines(*(record(key) for key in range(5)))
    plain = decoder_for("jsonl", FEEDING).decode(batch)
    through = decode("identity", batch)
    assert features(through) == features(plain) and len(features(plain)) == 5
    assert (through.dropped, through.added, through.dead_letters) == (0, 0, [])
    assert through.instances[0].features["mass_g"].dtype == np.float32


def test_a_udf_derives_the_field_the_model_needs():
    batch = lines(*({k: v for k, v in record(key).items() if k != "mass_g"} | {"mass_kg": 3.5} for key in range(3)))
    assert decode("identity", batch).dead_letters[0].reason == "missing_field"
    decoded = decode("grams", batch)
    assert [row["mass_g"] for row in features(decoded).values()] == [3500.0] * 3


def test_raises_drops_splits_and_wrong_returns_each_as_the_contract_says():
    batch = lines(*(record(key) for key in range(1, 9)))
    decoded = decode("fussy", batch)
    assert sorted(features(decoded)) == [1, 8, 40, 41]
    assert (decoded.dropped, decoded.added) == (2, 1)  # keys 3 (None) and 7 (an empty list); key 4 made two
    letters = {letter.position: letter for letter in decoded.dead_letters}
    assert sorted(letters) == ["in.jsonl:2", "in.jsonl:5", "in.jsonl:6"]  # keys 2, 5, 6 on lines 2, 5, 6
    raised = letters["in.jsonl:2"]
    assert raised.reason == "udf_error" and raised.message == "udf.py:12 in fussy: KeyError: 'missing'"
    assert 'return record["missing"]' in raised.stacktrace and raised.payload == batch.payloads[1]
    assert letters["in.jsonl:5"].message == (
        "fussy() returned str 'not a record': it must return a dict, a list, tuple or generator of dicts, or None"
    )
    assert "a list holding int 7" in letters["in.jsonl:6"].message


def test_records_keyed_by_position_split_into_distinct_keys_and_dead_letters_point_at_the_source():
    feeding = Feeding(SCALARS, "key", KEY_POSITION)
    unkeyed = [{k: v for k, v in record(key).items() if k != "key"} for key in range(2)]
    decoded = decode("halves", lines(*unkeyed), feeding)
    assert sorted(features(decoded)) == ["in.jsonl:1#0", "in.jsonl:1#1", "in.jsonl:2#0", "in.jsonl:2#1"]
    instances = decoded.instances[0]
    letter = instances.dead_letter(3, Rejection("inference_failed", "the model failed"))
    assert (letter.origin, letter.position, letter.payload) == ("in.jsonl", "in.jsonl:2", lines(*unkeyed).payloads[1])


def test_what_the_udf_returns_that_does_not_fit_is_a_dead_letter_of_the_source_record_saying_so():
    batch = lines(record(1))
    (letter,) = decode("spoil", batch).dead_letters
    assert letter.reason == "wrong_type" and letter.position == "in.jsonl:1" and letter.payload == batch.payloads[0]
    assert letter.message.startswith("in what spoil() returned: field 'mass_g'")


def test_lines_that_are_no_json_object_are_dead_letters_before_the_udf():
    batch = RecordBatch("in.jsonl", 1, [b"not json", b"", b"[1, 2]", json.dumps(record(4)).encode()])
    decoded = decode("identity", batch)
    assert sorted(features(decoded)) == [4]
    assert [(letter.position, letter.reason) for letter in decoded.dead_letters] == [
        ("in.jsonl:1", "not_json"),
        ("in.jsonl:2", "empty_record"),
        ("in.jsonl:3", "wrong_type"),
    ]
    assert "a UDF takes JSON objects; this line is a JSON list" in decoded.dead_letters[2].message


def test_csv_rows_are_typed_as_the_csv_decoder_types_them():
    header = b"key,island,mass_g,count,flag"
    batch = RecordBatch("in.csv", 2, [b'1,"Biscoe",3750,2,1', b"2,7,3800.5,3,0", b"3,broken"], header=header)
    positions, records, rejections = source_records(batch, "csv", frozenset({"island"}))
    assert records == [
        {"key": 1, "island": "Biscoe", "mass_g": 3750, "count": 2, "flag": 1},
        {"key": 2, "island": "7", "mass_g": 3800.5, "count": 3, "flag": 0},  # a text input's column stays text
    ]
    assert positions == [0, 1] and [(at, rejection.reason) for at, rejection in rejections] == [(2, "bad_csv")]


def test_table_avro_and_parquet_rows_are_given_as_dicts_and_changes_leave_the_payload():
    rows = [record(1), record(2)]
    batch = RowBatch("project:data.table", rows, "key")
    _, records, _ = source_records(batch, "bigquery_rows")
    records[0]["island"] = "changed"
    assert rows[0]["island"] == "Biscoe" and orjson.loads(batch.payload_of(0))["island"] == "Biscoe"
    table = pa.Table.from_pylist([{k: v for k, v in row.items() if k != "extra"} for row in rows])
    parquet = ColumnBatch("part-0.parquet", 10, table, "key")
    assert source_records(parquet, "parquet")[1] == table.to_pylist()
    assert sorted(features(decode("identity", parquet, record_format="parquet"))) == [1, 2]


def test_whole_files_are_given_as_path_and_bytes():
    batch = RecordBatch("", 0, [b"\x89PNG", b"GIF8"], origins=("a/1.png", "a/2.gif"))
    assert source_records(batch, "files")[1] == [
        {"path": "a/1.png", "bytes": b"\x89PNG"},
        {"path": "a/2.gif", "bytes": b"GIF8"},
    ]


def test_fieldless_formats_are_refused_by_the_decoder():
    with pytest.raises(ValueError, match="key_values records have no fields"):
        UdfRecordsDecoder("key_values", FEEDING, udf("identity"))


def test_a_file_that_fails_on_a_worker_makes_every_record_a_dead_letter():
    broken = UdfCode("udf.py", "raise RuntimeError('no config here')\n", before="identity")
    decoded = decoder_for("jsonl", FEEDING, broken).decode(lines(record(1), record(2)))
    assert [letter.reason for letter in decoded.dead_letters] == ["udf_error", "udf_error"]
    assert "udf.py:1 in <module>: RuntimeError: no config here" in decoded.dead_letters[0].message


def test_per_record_decoding_takes_over_for_vector_inputs_and_keeps_their_reasons():
    source = "def prepare(record):\n    return record\n"
    good = {"key": 1, "island": "a", "length": 2, "count": 3, "vector": [1, 2]}
    bad = {"key": 2, "island": "a", "length": 2, "count": 3, "vector": [1]}
    decoder = decoder_for("jsonl", TABULAR_FEEDING, UdfCode("u.py", source, before="prepare"))
    decoded = decoder.decode(lines(good, bad))
    assert sorted(features(decoded)) == [1] and decoded.dead_letters[0].reason == "wrong_shape"


# Values of every kind a UDF may put in a field: each must be taken, or refused, as record by record.
value = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.just({"b64": base64.b64encode(b"x").decode()}),
    st.lists(st.integers(0, 3), max_size=2),
)
key = st.one_of(st.integers(-5, 5), st.text(max_size=2), st.none(), st.booleans(), st.floats(-3, 3))
names = [spec.name for spec in SCALARS]
returned = st.lists(
    st.fixed_dictionaries({"key": key}, optional={name: value for name in names}), min_size=1, max_size=6
)
kinds = st.sampled_from([KEY_INT, KEY_STR, KEY_POSITION, KEY_STR_OR_POSITION])


RETURNS = "def f(record):\n    return RETURNED.pop(0)\n"  # what the test gives the UDF to return, in order


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(returned, kinds, st.booleans())
def test_whole_columns_give_what_record_by_record_gives(outputs, key_kind, uniform):
    """The columnar path feeds exactly what the per-record path feeds, and falls back whenever it cannot vouch."""
    if uniform:  # the columnar path's case: every field present and of one type
        outputs = [
            {"key": index, "island": "i", "mass_g": 1.5 * index, "count": index, "flag": True}
            for index in range(len(outputs))
        ]
    feeding = Feeding(SCALARS, "key", key_kind, included_fields=("island",))
    source = RecordBatch("in.jsonl", 1, [b"{}"] * len(outputs))
    load(UdfCode("u.py", RETURNS)).RETURNED = [dict(output) for output in outputs]
    decoded = UdfRecordsDecoder("jsonl", feeding, UdfCode("u.py", RETURNS, before="f")).decode(source)
    count = len(outputs)
    rows = UdfRows(
        "in.jsonl",
        [dict(output) for output in outputs],
        source=source,
        sources=tuple(range(count)),
        parts=(-1,) * count,
    )
    builder = InstanceBuilder(feeding, rows)
    for index, output in enumerate(rows.rows):
        builder.add(index, output)
    got = [(letter.position, letter.reason) for letter in decoded.dead_letters]
    assert sorted(got) == sorted((rows.locate(index), rejection.reason) for index, rejection in builder.rejections)

    def fed(batches) -> dict:
        return {
            int(position): (
                plain(instances.keys[index]),
                instances.included[index],
                {
                    name: (plain(array[index]), array.dtype == object or array.dtype.name)
                    for name, array in instances.features.items()
                },
            )
            for instances in batches
            for index, position in enumerate(instances.positions)
        }

    assert fed(decoded.instances) == fed(builder.batches())


IMAGE = Feeding((TensorSpec("image", "float32", (4, 4, 1)),), "key", KEY_INT)


def nested_images(keys: list) -> pa.Table:
    images = (np.arange(len(keys) * 16, dtype=np.float32).reshape(len(keys), 4, 4) / 10).tolist()
    return pa.table({"key": keys, "image": pa.array(images, pa.list_(pa.list_(pa.float32())))})


@pytest.mark.parametrize("record_format", ["parquet", "avro"])
def test_over_parquet_and_avro_an_identity_udf_fills_tensor_inputs_as_the_plain_decoder_does(record_format):
    table = nested_images([1, 2, 3])
    batch = (
        ColumnBatch("a.parquet", 0, table, "key")
        if record_format == "parquet"
        else RowBatch("a.avro", table.to_pylist(), "key")
    )
    through_udf = decode("identity", batch, IMAGE, record_format)
    assert through_udf.dead_letters == []
    assert features(through_udf) == features(decoder_for(record_format, IMAGE).decode(batch))
    assert np.asarray(features(through_udf)[2]["image"]).shape == (4, 4, 1)


ITERABLES = """\
from types import MappingProxyType


def halves(record):
    for half in (0, 1):
        if record["key"] == 2 and half:
            raise ValueError("no second half of 2")
        yield dict(record, key=record["key"] * 10 + half)


def pair(record):
    return (record, dict(record, key=record["key"] + 100))


def frozen(record):
    return MappingProxyType(record)
"""


def test_a_generator_tuple_or_mapping_a_udf_returns_is_taken_and_a_generators_error_is_a_dead_letter():
    source = lines(record(1), record(2))
    decoded = decoder_for("jsonl", FEEDING, udf("halves", ITERABLES)).decode(source)
    assert sorted(features(decoded)) == [10, 11]
    (letter,) = decoded.dead_letters
    assert letter.reason == "udf_error" and letter.position == "in.jsonl:2"
    assert letter.message == "udf.py:7 in halves: ValueError: no second half of 2"
    assert (decoded.dropped, decoded.added) == (0, 1)
    assert sorted(features(decoder_for("jsonl", FEEDING, udf("pair", ITERABLES)).decode(source))) == [1, 2, 101, 102]
    assert sorted(features(decoder_for("jsonl", FEEDING, udf("frozen", ITERABLES)).decode(source))) == [1, 2]


NESTED = """\
def meddles(record):
    record["extra"].append("added")
    record["where"]["island"] = "changed"
    record["shots"][0]["x"] = -1
    raise ValueError("gave up")
"""


@pytest.mark.parametrize("origin", ["a.avro", "project:data.table"])
def test_a_udf_changing_a_rows_nested_values_in_place_leaves_its_dead_letters_payload_as_read(origin):
    row = record(1, where={"island": "Biscoe"}, shots=[{"x": 1}])
    batch = RowBatch(origin, [row], "key")
    read = batch.payload_of(0)
    record_format = "avro" if origin.endswith(".avro") else "bigquery_rows"
    (letter,) = decoder_for(record_format, FEEDING, udf("meddles", NESTED)).decode(batch).dead_letters
    assert letter.reason == "udf_error" and letter.message.endswith("ValueError: gave up")
    assert letter.payload == read
    assert row["extra"] == [1, "x"] and row["where"] == {"island": "Biscoe"} and row["shots"] == [{"x": 1}]


def test_a_numpy_array_a_udf_returns_over_parquet_fills_a_tensor_input_row_major():
    source = "import numpy as np\n\n\ndef flat(record):\n    return dict(record, image=np.ravel(record['image']))\n"
    batch = ColumnBatch("a.parquet", 0, nested_images([1, 2]), "key")
    decoded = decoder_for("parquet", IMAGE, udf("flat", source)).decode(batch)
    assert decoded.dead_letters == [] and features(decoded) == features(decoder_for("parquet", IMAGE).decode(batch))
