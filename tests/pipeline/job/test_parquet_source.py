"""Parquet read in slices of row groups: every row exactly once however the slices are spread, only the
columns asked for, folders of parts without their hidden files, damaged files as dead letters."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.util import assert_that, equal_to

from pipeline.job.parquet_source import ReadParquetFiles


def test_parquet_row_groups_are_spread_as_slices_and_every_row_is_read_exactly_once(tmp_path):
    table = pa.table({"key": list(range(2_500)), "x": [float(key) for key in range(2_500)], "unused": ["u"] * 2_500})
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=300)  # 9 row groups
    pq.write_table(table.slice(0, 10), tmp_path / "small.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 cut short")
    read = ReadParquetFiles(
        str(tmp_path / "*.parquet"), 128, ("key", "x"), spread=True, key_column="key", slice_bytes=1
    )
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | read
        rows = batches | beam.FlatMap(
            lambda batch: [
                (batch.origin.rsplit("/", 1)[1], batch.position_of(index), row["key"], tuple(row))
                for index, row in enumerate(batch.rows())
            ]
        )
        big = [("big.parquet", f"{tmp_path}/big.parquet:{key}", key, ("key", "x")) for key in range(2_500)]
        small = [("small.parquet", f"{tmp_path}/small.parquet:{key}", key, ("key", "x")) for key in range(10)]
        assert_that(rows, equal_to(big + small))
        largest = batches | beam.Map(len) | beam.CombineGlobally(max)
        assert_that(largest, equal_to([128]), label="batches of at most batch_size")
        reasons = dead_letters | beam.Map(lambda letter: (letter.origin, letter.reason))
        assert_that(reasons, equal_to([(str(tmp_path / "bad.parquet"), "truncated_input")]), label="dead letter")


def test_a_folder_input_reads_every_part_but_the_hidden_files(tmp_path):
    (tmp_path / "t" / "_temporary").mkdir(parents=True)
    for part in range(3):
        pq.write_table(pa.table({"key": [part]}), tmp_path / "t" / f"part-{part}.snappy.parquet")
    pq.write_table(pa.table({"key": [99]}), tmp_path / "t" / "_temporary" / "part-9.parquet")
    (tmp_path / "t" / "_SUCCESS").write_bytes(b"")
    (tmp_path / "t" / ".part-0.snappy.parquet.crc").write_bytes(b"crc")
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadParquetFiles(f"{tmp_path}/t/", 10)
        keys = batches | beam.FlatMap(lambda batch: batch.table["key"].to_pylist())
        assert_that(keys, equal_to([0, 1, 2]))
        assert_that(dead_letters, equal_to([]), label="hidden files are not read at all")


def test_folder_placeholder_objects_are_not_read_as_files(tmp_path, monkeypatch):
    from tests.folder_placeholders import list_placeholders

    (tmp_path / "t").mkdir()
    for part in range(2):
        pq.write_table(pa.table({"key": [part]}), tmp_path / "t" / f"part-{part}.parquet")
    list_placeholders(monkeypatch)
    for pattern in (f"{tmp_path}/t/", f"{tmp_path}/t/*"):
        with beam.Pipeline() as pipeline:
            batches, dead_letters = pipeline | ReadParquetFiles(pattern, 10)
            keys = batches | beam.FlatMap(lambda batch: batch.table["key"].to_pylist())
            assert_that(keys, equal_to([0, 1]))
            assert_that(dead_letters, equal_to([]), label="no placeholder is a corrupt file")
