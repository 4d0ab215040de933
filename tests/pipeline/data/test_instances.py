"""Field values typed by the signature: dtypes, shapes, bytes, keys, and instances grouped by shape."""

from __future__ import annotations

import base64
import warnings
from decimal import Decimal

import numpy as np
import pytest

from pipeline.data.batches import RecordBatch, RowBatch
from pipeline.data.dead_letters import Reason, Rejection
from pipeline.data.instances import (
    KEY_INT,
    KEY_POSITION,
    KEY_STR,
    Feeding,
    InstanceBuilder,
    columnar_batch,
    convert,
    convert_key,
    key_feed,
    record_key,
)
from pipeline.model.signatures import TensorSpec

FLOAT = TensorSpec("x", "float32", ())
INT64 = TensorSpec("n", "int64", ())
BOOL = TensorSpec("flag", "bool", ())
TEXT = TensorSpec("s", "string", ())


def rejected(result, reason: str) -> str:
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    assert result.reason == reason
    return result.message


# convert: numbers.


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        (1.5, "float32", 1.5),
        (2, "float32", 2.0),
        (Decimal("2.25"), "float64", 2.25),  # BigQuery NUMERIC
        (3, "int64", 3),
        (3.0, "int32", 3),  # a float with no fraction is an integer
        (255, "uint8", 255),
        (-128, "int8", -128),
        (2**63 - 1, "int64", 2**63 - 1),
        (True, "bool", True),
        (False, "bool", False),
        (1.0, "float16", 1.0),
    ],
)
def test_numbers_convert_to_the_inputs_dtype(value, dtype, expected):
    array = convert(value, TensorSpec("x", dtype, ()))
    assert isinstance(array, np.ndarray)
    assert array.dtype == np.dtype(dtype)
    assert array.shape == ()
    assert array.item() == expected


@pytest.mark.parametrize(
    ("value", "spec", "wanted"),
    [
        ("1.5", FLOAT, "finite float32 numbers"),  # text is not a number
        (b"1", FLOAT, "finite float32 numbers"),
        ({"v": 1}, FLOAT, "finite float32 numbers"),
        (float("nan"), FLOAT, "finite float32 numbers"),
        (float("inf"), FLOAT, "finite float32 numbers"),
        (1e40, FLOAT, "finite float32 numbers"),  # overflows float32 to inf
        (70000, TensorSpec("h", "float16", ()), "finite float16 numbers"),
        (2.5, INT64, "finite int64 numbers"),  # a fraction is not an integer
        (float("nan"), INT64, "finite int64 numbers"),
        (256, TensorSpec("b", "uint8", ()), "finite uint8 numbers"),  # out of range, not wrapped
        (-1, TensorSpec("u", "uint32", ()), "finite uint32 numbers"),
        (2**63, INT64, "finite int64 numbers"),
        (True, INT64, "finite int64 numbers"),  # booleans are not numbers
        (True, FLOAT, "finite float32 numbers"),
        (1, BOOL, "true or false"),  # numbers are not booleans
        (1.0, BOOL, "true or false"),
    ],
)
def test_values_of_the_wrong_type_are_rejected_with_the_field_named(value, spec, wanted):
    message = rejected(convert(value, spec), Reason.WRONG_TYPE)
    assert message.startswith(f"field '{spec.name}': ")
    assert message.endswith(f"is not {wanted}")


def test_a_null_value_is_a_missing_field():
    assert rejected(convert(None, FLOAT), Reason.MISSING_FIELD) == "field 'x' is null"


def test_long_values_are_cut_short_in_the_message():
    message = rejected(convert("y" * 100, FLOAT), Reason.WRONG_TYPE)
    assert message == f"field 'x': {repr('y' * 100)[:40]}... is not finite float32 numbers"


def test_a_float_just_past_int64_max_is_rejected_not_wrapped():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = convert(float(2**63), INT64)
    rejected(result, Reason.WRONG_TYPE)


def test_an_integer_beyond_64_bits_fits_a_float_input():
    array = convert(10**20, FLOAT)
    assert isinstance(array, np.ndarray)
    assert array.item() == pytest.approx(1e20)


# convert: shapes.


def test_nested_lists_take_a_fully_known_shape():
    spec = TensorSpec("m", "float32", (2, 3))
    array = convert([[1, 2, 3], [4, 5, 6]], spec)
    assert array.dtype == np.float32
    assert array.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        ([1.0], (1,)),
        ([1.0, 2.0, 3.0, 4.0, 5.0], (5,)),
        ([], (0,)),
    ],
)
def test_a_none_dimension_takes_any_size(value, shape):
    array = convert(value, TensorSpec("v", "float32", (None,)))
    assert array.shape == shape


def test_only_the_none_dimension_may_vary():
    spec = TensorSpec("p", "float32", (None, 2))
    assert convert([[1, 2], [3, 4], [5, 6]], spec).shape == (3, 2)
    message = rejected(convert([[1, 2, 3]], spec), Reason.WRONG_SHAPE)
    assert message == "field 'p' has shape (1, 3), the model takes ('?', 2)"


@pytest.mark.parametrize(
    ("value", "spec", "message"),
    [
        (5.0, TensorSpec("v", "float32", (2,)), "field 'v' has shape (), the model takes (2,)"),
        ([5.0], FLOAT, "field 'x' has shape (1,), the model takes ()"),
        ([1.0, 2.0, 3.0], TensorSpec("v", "float32", (2,)), "field 'v' has shape (3,), the model takes (2,)"),
        ([[1.0, 2.0]], TensorSpec("v", "float32", (2,)), "field 'v' has shape (1, 2), the model takes (2,)"),
    ],
)
def test_values_of_the_wrong_shape_are_rejected_with_both_shapes(value, spec, message):
    assert rejected(convert(value, spec), Reason.WRONG_SHAPE) == message


def test_ragged_lists_are_the_wrong_type_not_a_crash():
    rejected(convert([[1, 2], [3]], TensorSpec("v", "float32", (None, None))), Reason.WRONG_TYPE)
    rejected(convert([1, [2]], TensorSpec("v", "float32", (None,))), Reason.WRONG_TYPE)


def test_decimals_inside_lists_become_floats():
    array = convert([Decimal("0.5"), Decimal("1.5")], TensorSpec("v", "float64", (2,)))
    assert array.dtype == np.float64
    assert array.tolist() == [0.5, 1.5]


# convert: strings and bytes.


def test_text_becomes_utf8_bytes_and_bytes_stay_as_they_are():
    assert convert("héllo", TEXT).item() == "héllo".encode()
    assert convert(b"\x00\xff", TEXT).item() == b"\x00\xff"
    assert convert("x", TEXT).dtype == object


def test_b64_objects_are_decoded_to_bytes():
    """Vertex AI's {"b64": ...}: how JSON carries bytes such as an image."""
    encoded = base64.b64encode(b"\x89PNG\x00").decode()
    assert convert({"b64": encoded}, TEXT).item() == b"\x89PNG\x00"


@pytest.mark.parametrize(
    "value",
    [
        {"b64": "not base64!"},
        {"b64": 123},
        {"b64": "aGk=", "extra": 1},
        {"data": "aGk="},
        5,
        1.5,
        True,
    ],
)
def test_anything_else_is_not_text_for_a_string_input(value):
    message = rejected(convert(value, TEXT), Reason.WRONG_TYPE)
    assert message.endswith('is not text, or {"b64": ...} for bytes')


def test_string_lists_keep_their_shape_and_mix_text_bytes_and_b64():
    spec = TensorSpec("t", "string", (2, 2))
    array = convert([["a", b"b"], [{"b64": base64.b64encode(b"c").decode()}, "d"]], spec)
    assert array.shape == (2, 2)
    assert array.tolist() == [[b"a", b"b"], [b"c", b"d"]]


def test_string_lists_with_a_none_dimension():
    spec = TensorSpec("t", "string", (None,))
    assert convert(["a", "b", "c"], spec).tolist() == [b"a", b"b", b"c"]
    assert convert([], spec).shape == (0,)
    rejected(convert("a", spec), Reason.WRONG_SHAPE)


def test_ragged_or_mixed_string_lists_are_rejected():
    spec = TensorSpec("t", "string", (None, None))
    rejected(convert([["a", "b"], ["c"]], spec), Reason.WRONG_TYPE)
    rejected(convert(["a", 1], TensorSpec("t", "string", (None,))), Reason.WRONG_TYPE)


# Keys.


@pytest.mark.parametrize(
    ("value", "expected"), [(7, 7), (-3, -3), (7.0, 7), (2**63 - 1, 2**63 - 1), (-(2**63), -(2**63))]
)
def test_integer_keys_accept_integers_and_whole_floats(value, expected):
    key = convert_key(value, KEY_INT)
    assert key == expected and type(key) is int


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, Reason.BAD_KEY),
        ("7", Reason.BAD_KEY),
        (7.5, Reason.BAD_KEY),
        (float("nan"), Reason.BAD_KEY),
        (float("inf"), Reason.BAD_KEY),
        ([7], Reason.BAD_KEY),
        (2**63, Reason.KEY_OUT_OF_RANGE),
        (-(2**63) - 1, Reason.KEY_OUT_OF_RANGE),
        (float(2**63), Reason.KEY_OUT_OF_RANGE),
    ],
)
def test_integer_keys_reject_what_is_not_a_64_bit_integer(value, reason):
    rejected(convert_key(value, KEY_INT), reason)


@pytest.mark.parametrize(("value", "expected"), [("abc", "abc"), (b"caf\xc3\xa9", "café"), (42, "42")])
def test_text_keys_accept_text_utf8_bytes_and_integers(value, expected):
    assert convert_key(value, KEY_STR) == expected


@pytest.mark.parametrize("value", [True, 1.5, {"id": 1}, ["a"]])
def test_text_keys_reject_other_values(value):
    assert rejected(convert_key(value, KEY_STR), Reason.BAD_KEY).endswith("is not text or an integer")


def test_text_keys_reject_bytes_that_are_not_utf8():
    assert rejected(convert_key(b"\xff\xfe", KEY_STR), Reason.BAD_KEY) == "key is not UTF-8 text"


def test_record_key_by_position_is_where_the_record_is():
    source = RecordBatch("in.jsonl", 10, [b"{}", b"{}"])
    feeding = Feeding((FLOAT,), "key", KEY_POSITION)
    assert record_key(feeding, source, 1, {"key": 99}) == "in.jsonl:11"


def test_record_key_of_a_keyed_job_is_the_field_converted():
    source = RecordBatch("in.jsonl", 1, [b"{}"])
    assert record_key(Feeding((FLOAT,), "id", KEY_INT), source, 0, {"id": 5.0}) == 5
    assert record_key(Feeding((FLOAT,), "id", KEY_STR), source, 0, {"id": 5}) == "5"


@pytest.mark.parametrize("fields", [{}, {"id": None}])
def test_record_key_missing_or_null_is_a_missing_key_naming_the_field(fields):
    source = RecordBatch("in.jsonl", 1, [b"{}"])
    message = rejected(record_key(Feeding((FLOAT,), "id", KEY_INT), source, 0, fields), Reason.MISSING_KEY)
    assert message == "no key field 'id'"
    custom = record_key(Feeding((FLOAT,), "id", KEY_INT), source, 0, fields, what="key column")
    assert custom.message == "no key column 'id'"


def test_key_feed_gives_text_keys_to_a_string_input_as_bytes():
    fed = key_feed(np.array([1, 22], dtype=np.int64), TensorSpec("key", "string", ()))
    assert fed.dtype == object and fed.tolist() == [b"1", b"22"]
    fed = key_feed(np.array(["a", "b"], dtype=object), TensorSpec("key", "string", ()))
    assert fed.tolist() == [b"a", b"b"]


def test_key_feed_casts_integer_keys_to_the_inputs_dtype():
    fed = key_feed(np.array([1, 2], dtype=np.int64), TensorSpec("key", "int32", ()))
    assert fed.dtype == np.int32 and fed.tolist() == [1, 2]


# InstanceBuilder: records of one source batch into InstanceBatches.

POINT = TensorSpec("point", "float32", (2,))
SEQUENCE = TensorSpec("seq", "int64", (None,))


def test_builder_stacks_records_into_one_batch_in_the_signatures_dtypes():
    source = RecordBatch("in.jsonl", 1, [b"a", b"b", b"c"])
    feeding = Feeding((POINT, TEXT), "id", KEY_INT)
    builder = InstanceBuilder(feeding, source)
    builder.add(0, {"id": 10, "point": [1, 2], "s": "x", "ignored": "field"})
    builder.add(2, {"id": 12.0, "point": [5.5, 6], "s": b"z"})
    (batch,) = builder.batches()
    assert builder.rejections == []
    assert batch.keys.dtype == np.int64 and batch.keys.tolist() == [10, 12]
    assert batch.positions.tolist() == [0, 2]
    assert batch.features["point"].dtype == np.float32
    assert batch.features["point"].tolist() == [[1, 2], [5.5, 6]]
    assert batch.features["s"].dtype == object and batch.features["s"].tolist() == [b"x", b"z"]
    assert set(batch.features) == {"point", "s"}  # the key is not fed: no input takes it
    assert batch.included is None
    assert batch.source is source


def test_builder_groups_instances_of_different_shapes_into_separate_batches():
    """Instances whose shapes differ cannot share one tensor."""
    source = RecordBatch("in.jsonl", 1, [b""] * 5)
    builder = InstanceBuilder(Feeding((SEQUENCE,), "id", KEY_STR), source)
    builder.add(0, {"id": "a", "seq": [1, 2]})
    builder.add(1, {"id": "b", "seq": [1, 2, 3]})
    builder.add(2, {"id": "c", "seq": [3, 4]})
    builder.add(3, {"id": "d", "seq": []})
    builder.add(4, {"id": "e", "seq": [7, 8, 9]})
    batches = {batch.features["seq"].shape: batch for batch in builder.batches()}
    assert set(batches) == {(2, 2), (2, 3), (1, 0)}
    assert batches[(2, 2)].keys.tolist() == ["a", "c"]
    assert batches[(2, 2)].positions.tolist() == [0, 2]
    assert batches[(2, 3)].features["seq"].tolist() == [[1, 2, 3], [7, 8, 9]]
    assert batches[(2, 3)].positions.tolist() == [1, 4]
    assert batches[(1, 0)].keys.tolist() == ["d"]
    assert batches[(2, 2)].keys.dtype == object


def test_builder_rejects_each_bad_record_once_with_its_position():
    source = RecordBatch("in.jsonl", 1, [b""] * 6)
    builder = InstanceBuilder(Feeding((POINT, INT64), "id", KEY_INT), source)
    builder.add(0, {"id": 1, "point": [1, 2], "n": 1})
    builder.add(1, {"point": [1, 2], "n": 1})  # no key
    builder.add(2, {"id": "two", "point": [1, 2], "n": 1})  # bad key
    builder.add(3, {"id": 3, "n": 1})  # no point
    builder.add(4, {"id": 4, "point": [1, 2, 3], "n": "x"})  # wrong shape first: only that is reported
    builder.reject(5, Rejection(Reason.NOT_JSON, "not JSON"))
    assert builder.rejections == [
        (1, Rejection(Reason.MISSING_KEY, "no key field 'id'")),
        (2, Rejection(Reason.BAD_KEY, "key 'two' is not an integer")),
        (3, Rejection(Reason.MISSING_FIELD, "no field 'point'")),
        (4, Rejection(Reason.WRONG_SHAPE, "field 'point' has shape (3,), the model takes (2,)")),
        (5, Rejection(Reason.NOT_JSON, "not JSON")),
    ]
    (batch,) = builder.batches()
    assert batch.keys.tolist() == [1]


def test_builder_with_every_record_rejected_has_no_batches():
    builder = InstanceBuilder(Feeding((FLOAT,), "id", KEY_INT), RecordBatch("in", 1, [b""]))
    builder.add(0, {"id": 1, "x": "nope"})
    assert builder.batches() == []
    assert len(builder.rejections) == 1


def test_builder_keys_by_position_when_records_have_no_key():
    source = RecordBatch("in.csv", 2, [b"", b""], header=b"x")
    builder = InstanceBuilder(Feeding((FLOAT,), "key", KEY_POSITION), source)
    builder.add(0, {"x": 1.0})
    builder.add(1, {"x": 2.0})
    (batch,) = builder.batches()
    assert batch.keys.tolist() == ["in.csv:2", "in.csv:3"]


def test_builder_feeds_the_keys_to_a_signature_input_of_that_name():
    source = RecordBatch("in.jsonl", 1, [b"", b""])
    feeding = Feeding((FLOAT,), "key", KEY_INT, key_input=TensorSpec("key", "int32", ()))
    builder = InstanceBuilder(feeding, source)
    builder.add(0, {"key": 5, "x": 0.5})
    builder.add(1, {"key": 6, "x": 1.5})
    (batch,) = builder.batches()
    assert batch.features["key"].dtype == np.int32
    assert batch.features["key"].tolist() == [5, 6]


def test_builder_copies_included_fields_even_when_absent():
    source = RecordBatch("in.jsonl", 1, [b"", b""])
    feeding = Feeding((FLOAT,), "id", KEY_INT, included_fields=("species", "island"))
    builder = InstanceBuilder(feeding, source)
    builder.add(0, {"id": 1, "x": 1.0, "species": "adelie", "island": "torgersen"})
    builder.add(1, {"id": 2, "x": 2.0, "species": "gentoo"})
    (batch,) = builder.batches()
    assert batch.included == [{"species": "adelie", "island": "torgersen"}, {"species": "gentoo", "island": None}]


# columnar_batch: whole columns, when every value fits.


def test_columnar_batch_takes_whole_columns_when_every_value_fits():
    source = RowBatch("p:d.t", [{}, {}, {}])
    feeding = Feeding((POINT, TEXT), "id", KEY_INT)
    columns = {
        "point": np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float64),
        "s": np.array(["a", b"b", "c"], dtype=object),
    }
    batch = columnar_batch(feeding, source, columns, np.array([7, 8, 9], dtype=np.int32), included=[{}, {}, {}])
    assert batch is not None
    assert batch.keys.dtype == np.int64 and batch.keys.tolist() == [7, 8, 9]
    assert batch.features["point"].dtype == np.float32
    assert batch.features["point"].tolist() == [[1, 2], [3, 4], [5, 6]]
    assert batch.features["s"].tolist() == ["a", b"b", "c"]
    assert batch.positions.tolist() == [0, 1, 2]
    assert batch.included == [{}, {}, {}]


def test_columnar_batch_keys_by_position_and_feeds_a_key_input():
    source = RecordBatch("in.csv", 2, [b"", b""])
    feeding = Feeding((FLOAT,), "key", KEY_POSITION, key_input=TensorSpec("key", "string", ()))
    batch = columnar_batch(feeding, source, {"x": np.array([1.0, 2.0])}, keys=None)
    assert batch.keys.tolist() == ["in.csv:2", "in.csv:3"]
    assert batch.features["key"].tolist() == [b"in.csv:2", b"in.csv:3"]


def test_columnar_batch_with_text_keys():
    source = RowBatch("p:d.t", [{}, {}])
    batch = columnar_batch(
        Feeding((FLOAT,), "id", KEY_STR), source, {"x": np.array([1.0, 2.0])}, np.array(["a", "b"], dtype=object)
    )
    assert batch.keys.tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("feeding", "columns", "keys"),
    [
        # a column is missing, or of another length
        (Feeding((FLOAT,), "id", KEY_INT), {}, np.array([1, 2])),
        (Feeding((FLOAT,), "id", KEY_INT), {"x": np.array([1.0])}, np.array([1, 2])),
        # a null or a non-finite number needs a reason per record
        (Feeding((FLOAT,), "id", KEY_INT), {"x": np.array([1.0, None], dtype=object)}, np.array([1, 2])),
        (Feeding((FLOAT,), "id", KEY_INT), {"x": np.array([1.0, np.nan])}, np.array([1, 2])),
        (Feeding((INT64,), "id", KEY_INT), {"n": np.array([1.0, 2.5])}, np.array([1, 2])),
        # the wrong shape, or an input with a None dimension
        (Feeding((POINT,), "id", KEY_INT), {"point": np.array([[1.0, 2.0, 3.0]] * 2)}, np.array([1, 2])),
        (Feeding((SEQUENCE,), "id", KEY_INT), {"seq": np.array([[1, 2], [3, 4]])}, np.array([1, 2])),
        # a string input given something other than text
        (Feeding((TEXT,), "id", KEY_INT), {"s": np.array(["a", 5], dtype=object)}, np.array([1, 2])),
        (Feeding((TEXT,), "id", KEY_INT), {"s": np.array(["a", "b"])}, np.array([1, 2])),  # numpy unicode
        # keys missing, of another length, or not of the job's kind
        (Feeding((FLOAT,), "id", KEY_INT), {"x": np.array([1.0, 2.0])}, None),
        (Feeding((FLOAT,), "id", KEY_INT), {"x": np.array([1.0, 2.0])}, np.array([1])),
        (Feeding((FLOAT,), "id", KEY_INT), {"x": np.array([1.0, 2.0])}, np.array([1.0, 2.0])),
        (Feeding((FLOAT,), "id", KEY_STR), {"x": np.array([1.0, 2.0])}, np.array(["a", None], dtype=object)),
        (Feeding((FLOAT,), "id", KEY_STR), {"x": np.array([1.0, 2.0])}, np.array([1, 2])),
    ],
)
def test_columnar_batch_leaves_to_the_per_record_path_what_it_cannot_take_whole(feeding, columns, keys):
    assert columnar_batch(feeding, RowBatch("p:d.t", [{}, {}]), columns, keys) is None


def test_columnar_batch_leaves_text_of_the_wrong_shape_to_the_per_record_path():
    feeding = Feeding((TensorSpec("pair", "string", (2,)),), "id", KEY_INT)
    columns = {"pair": np.array(["a", "b"], dtype=object)}
    assert columnar_batch(feeding, RowBatch("p:d.t", [{}, {}]), columns, np.array([1, 2])) is None
