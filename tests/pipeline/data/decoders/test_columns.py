"""Parquet batches fed by column name: straight from the Arrow columns where every row fits, the per-record
path (with the same instances) wherever a value needs a reason; Avro rows row by row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.batches import ColumnBatch, RowBatch
from pipeline.data.decoders import AVRO, COLUMNS_KEY_VALUES, PARQUET
from pipeline.data.decoders.columns import as_rows, table_instances
from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR, Feeding
from pipeline.model.signatures import TensorSpec
from tests.pipeline.data.decoders.tabular import FEEDING, TABULAR, decode

FILE = "gs://lake/part-0.parquet"


def tabular(rows: int = 4, **columns) -> pa.Table:
    data = {
        "key": pa.array(range(10, 10 + rows), pa.int64()),
        "island": pa.array([f"isle{i}" for i in range(rows)]),
        "length": pa.array([i + 0.5 for i in range(rows)], pa.float64()),
        "count": pa.array(range(rows), pa.int32()),
        "vector": pa.array([[i, i + 1.0] for i in range(rows)], pa.list_(pa.float32(), 2)),
        "colour": pa.array(["red"] * rows),
    }
    data.update(columns)
    return pa.table(data)


def as_bytes(array: np.ndarray) -> list:
    """Text as the model gets it: TensorFlow takes str and bytes alike (the fast path keeps Arrow's str)."""
    return [value.encode() if isinstance(value, str) else value for value in array.ravel().tolist()]


def same_instances(first, second) -> None:
    assert first.keys.tolist() == second.keys.tolist()
    assert first.positions.tolist() == second.positions.tolist()
    assert first.features.keys() == second.features.keys()
    for name, array in first.features.items():
        assert array.dtype == second.features[name].dtype, name
        if array.dtype == object:
            assert as_bytes(array) == as_bytes(second.features[name]), name
        else:
            np.testing.assert_array_equal(array, second.features[name])
    assert first.included == second.included


def test_a_batch_whose_rows_all_fit_is_taken_a_column_at_a_time_and_equals_the_per_record_path():
    batch = ColumnBatch(FILE, 100, tabular(), "key")
    feeding = Feeding(TABULAR, "key", KEY_INT, included_fields=("colour", "length"))
    fast = table_instances(feeding, batch)
    assert fast is not None
    assert fast.features["count"].dtype == np.int64 and fast.features["vector"].shape == (4, 2)
    (per_record,) = decode(AVRO, as_rows(batch), feeding).instances  # the same rows, row by row
    same_instances(fast, per_record)
    (decoded,) = decode(PARQUET, batch, feeding).instances
    same_instances(decoded, fast)


def test_an_integer_column_feeds_a_float_input_and_a_dictionary_column_a_string_one():
    table = tabular(
        length=pa.array([1, 2, 3, 4], pa.int64()), island=pa.array(["a", "b", "a", "b"]).dictionary_encode()
    )
    fast = table_instances(FEEDING, ColumnBatch(FILE, 0, table))
    assert fast is not None
    assert fast.features["length"].dtype == np.float32 and fast.features["length"].tolist() == [1, 2, 3, 4]
    assert fast.features["island"].tolist() == ["a", "b", "a", "b"]


def test_nulls_wrong_types_and_a_missing_column_are_dead_letters_naming_the_file_row():
    table = tabular(length=pa.array([1.5, None, 2.5, 3.5]), count=pa.array(["1", "2", "3", "x"]))
    decoded = decode(PARQUET, ColumnBatch(FILE, 100, table, key_column=None), Feeding(TABULAR, "key", KEY_POSITION))
    assert decoded.instances == []
    letters = [(letter.position, letter.reason, letter.message) for letter in decoded.dead_letters]
    assert letters[:2] == [
        (f"{FILE}:100", "wrong_type", "field 'count': '1' is not finite int64 numbers"),
        (f"{FILE}:101", "missing_field", "field 'length' is null"),
    ]
    assert letters[0][0] == f"{FILE}:100" and decoded.dead_letters[0].payload.startswith(b'{"key":10,')
    without = decode(PARQUET, ColumnBatch(FILE, 0, tabular().drop_columns(["vector"]), "key"))
    assert {(letter.position, letter.reason) for letter in without.dead_letters} == {
        (f"key={key}", "missing_field") for key in range(10, 14)
    }


def test_a_bad_row_sends_its_batch_down_the_per_record_path_where_the_others_are_still_fed():
    table = tabular(vector=pa.array([[1.0, 2.0], [3.0], None, [4.0, 5.0]], pa.list_(pa.float32())))
    decoded = decode(PARQUET, ColumnBatch(FILE, 0, table, "key"))
    (instances,) = decoded.instances
    assert instances.keys.tolist() == [10, 13] and instances.features["vector"].tolist() == [[1, 2], [4, 5]]
    assert [(letter.position, letter.reason) for letter in decoded.dead_letters] == [
        ("key=11", "wrong_shape"),
        ("key=12", "missing_field"),
    ]


def test_a_flat_list_fills_a_tensor_input_row_major_on_both_paths():
    image = TensorSpec("image", "float32", (2, 2, 1))
    feeding = Feeding((image,), "key", KEY_POSITION)
    flat = pa.array([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]], pa.list_(pa.float32(), 4))
    batch = ColumnBatch(FILE, 0, pa.table({"image": flat}))
    fast = table_instances(feeding, batch)
    assert fast is not None and fast.features["image"].shape == (2, 2, 2, 1)
    assert fast.keys.tolist() == [f"{FILE}:0", f"{FILE}:1"]
    (slow,) = decode(AVRO, as_rows(batch), feeding).instances
    same_instances(fast, slow)
    nested = pa.array([[[[0.0], [1.0]], [[2.0], [3.0]]]], pa.list_(pa.list_(pa.list_(pa.float64()))))
    (instances,) = decode(PARQUET, ColumnBatch(FILE, 0, pa.table({"image": nested})), feeding).instances
    assert instances.features["image"].tolist() == [[[[0.0], [1.0]], [[2.0], [3.0]]]]
    short = decode(PARQUET, ColumnBatch(FILE, 0, pa.table({"image": pa.array([[1.0, 2.0]])})), feeding)
    assert [letter.reason for letter in short.dead_letters] == ["wrong_shape"]


def test_text_keys_and_array_instances():
    feeding = Feeding((TensorSpec("values", "float32", (2,)),), "id", KEY_STR, array_fields=("length", "count"))
    table = tabular(id=pa.array(["a", "b", "c", "d"]))
    fast = table_instances(feeding, ColumnBatch(FILE, 0, table, "id"))
    assert fast is not None and fast.keys.tolist() == ["a", "b", "c", "d"]
    assert fast.features["values"].tolist() == [[0.5, 0], [1.5, 1], [2.5, 2], [3.5, 3]]
    (slow,) = decode(AVRO, as_rows(ColumnBatch(FILE, 0, table, "id")), feeding).instances
    same_instances(fast, slow)


def test_avro_rows_are_fed_row_by_row_and_located_by_their_record_index():
    rows = [{"key": 1, "island": "Dream", "length": 2.0, "count": 3, "vector": [1.0, 2.0]}, {"key": 2, "island": None}]
    decoded = decode(AVRO, RowBatch("a.avro", rows, None, start=40), Feeding(TABULAR, "key", KEY_INT))
    assert decoded.instances[0].keys.tolist() == [1]
    assert [(letter.position, letter.reason) for letter in decoded.dead_letters] == [("a.avro:41", "missing_field")]


def test_the_seeds_key_and_image_columns_read_as_its_lines():
    feeding = Feeding((TensorSpec("image", "float32", (2, 2, 1)),), "key", KEY_INT)
    table = pa.table({"key": [4, 5], "image": ["0,0.5,1,0", "1,2"]})
    decoded = decode(COLUMNS_KEY_VALUES, ColumnBatch(FILE, 7, table, "key"), feeding)
    assert decoded.instances[0].keys.tolist() == [4] and decoded.instances[0].features["image"].shape == (1, 2, 2, 1)
    assert [(letter.position, letter.reason) for letter in decoded.dead_letters] == [("key=5", "wrong_value_count")]


def nested_images(keys: list, rows: int = 3) -> pa.Table:
    images = (np.arange(rows * 16, dtype=np.float32).reshape(rows, 4, 4) / 10).tolist()
    return pa.table({"key": pa.array(keys, pa.int64()), "image": pa.array(images, pa.list_(pa.list_(pa.float32())))})


@pytest.mark.parametrize("shape", [(4, 4, 1), (16,), (2, 8)])
def test_a_null_in_a_batch_of_nested_list_rows_leaves_the_others_fed_as_the_column_path_feeds_them(shape):
    feeding = Feeding((TensorSpec("image", "float32", shape),), "key", KEY_INT)
    fast = table_instances(feeding, ColumnBatch(FILE, 0, nested_images([1, 2, 3]), "key"))
    assert fast is not None and fast.features["image"].shape == (3, *shape)
    decoded = decode(PARQUET, ColumnBatch(FILE, 0, nested_images([1, None, 3]), "key"), feeding)
    (instances,) = decoded.instances  # the per-record path, for the null key's sake
    assert instances.keys.tolist() == [1, 3]
    np.testing.assert_array_equal(instances.features["image"], fast.features["image"][[0, 2]])
    assert [(letter.position, letter.reason) for letter in decoded.dead_letters] == [(f"{FILE}:1", "missing_key")]
    (avro,) = decode(AVRO, RowBatch("a.avro", nested_images([1, 2, 3]).to_pylist(), "key"), feeding).instances
    same_instances(avro, fast)  # Avro's nested arrays, always per record, fill the input the same way


def test_a_lone_number_fills_no_tensor_input_on_either_path():
    feeding = Feeding((TensorSpec("length", "float32", (1,)),), "key", KEY_INT)
    batch = ColumnBatch(FILE, 0, tabular(), "key")
    assert table_instances(feeding, batch) is None
    assert {letter.reason for letter in decode(PARQUET, batch, feeding).dead_letters} == {"wrong_shape"}


# Rows of one list column at one depth, each of some shape at that depth, a value or a whole row null at times.
SHAPES = {1: [(4,), (3,), (5,)], 2: [(2, 2), (1, 4), (4, 1), (2, 3), (3, 1)], 3: [(2, 2, 1), (1, 2, 2), (2, 1, 1)]}
LEAVES = {"float32": pa.float32(), "float64": pa.float64(), "int32": pa.int32()}


@st.composite
def list_columns(draw):
    depth = draw(st.sampled_from(sorted(SHAPES)))
    uniform = draw(st.booleans())  # the column path's case: every row of one shape
    shapes = SHAPES[depth][:1] if uniform else SHAPES[depth]
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        shape = draw(st.sampled_from(shapes))
        values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape).tolist()
        if not uniform and draw(st.integers(0, 9)) == 0:
            values = None
        elif not uniform and draw(st.integers(0, 9)) == 0:
            flat = values
            for _ in range(depth - 1):
                flat = flat[0]
            flat[0] = None
        rows.append(values)
    leaf = draw(st.sampled_from(sorted(LEAVES)))
    arrow_type = LEAVES[leaf]
    for _ in range(depth):
        arrow_type = pa.list_(arrow_type)
    keys = [draw(st.one_of(st.integers(0, 5), st.none())) if not uniform else index for index in range(len(rows))]
    table = pa.table({"key": pa.array(keys, pa.int64()), "x": pa.array(rows, arrow_type)})
    return table, draw(st.sampled_from([(4,), (2, 2), (4, 1), (2, 2, 1), (1, 4), (3,)]))


def by_position(decoded) -> tuple[dict, list]:
    fed = {}
    for instances in decoded.instances:
        for index, position in enumerate(instances.positions.tolist()):
            fed[position] = (instances.keys[index].item(), instances.features["x"][index].tolist())
    return fed, sorted((letter.position, letter.reason) for letter in decoded.dead_letters)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(list_columns(), st.sampled_from(["float32", "int64"]))
def test_list_columns_fill_tensor_inputs_alike_by_column_and_record_by_record(drawn, dtype):
    """Whatever nesting a list column has, the column path feeds what the per-record path feeds, and it
    declines whenever any row needs a reason; Parquet and Avro (always per record) give the same."""
    table, shape = drawn
    feeding = Feeding((TensorSpec("x", dtype, shape),), "key", KEY_INT)
    batch = ColumnBatch(FILE, 0, table, "key")
    per_record = by_position(decode(AVRO, as_rows(batch), feeding))
    assert by_position(decode(PARQUET, batch, feeding)) == per_record
    fast = table_instances(feeding, batch)
    if fast is not None:
        fed, letters = per_record
        assert letters == [] and len(fed) == table.num_rows
        (slow,) = decode(AVRO, as_rows(batch), feeding).instances
        same_instances(fast, slow)
