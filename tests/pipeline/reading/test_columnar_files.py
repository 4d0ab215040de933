"""Parquet and Avro read as the job reads them: row-group slices, projected columns, positions from the
file's first row, every codec, and damage as one dead letter naming the row group or record."""

from __future__ import annotations

import decimal
import io
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data.batches import ColumnBatch, RowBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.reading.columnar_files import (
    ParquetSlice,
    file_columns,
    parquet_slices,
    read_avro_batches,
    read_parquet_file,
    read_parquet_slice,
)

ROWS = 3_000
GROUP = 1_000


def numbers(rows: int = ROWS) -> pa.Table:
    return pa.table({"key": np.arange(rows), "x": np.arange(rows) / 2.0, "name": [f"n{i}" for i in range(rows)]})


def write_parquet(path, table: pa.Table | None = None, **options) -> str:
    pq.write_table(numbers() if table is None else table, path, row_group_size=GROUP, **options)
    return str(path)


AVRO_SCHEMA = {
    "type": "record",
    "name": "Row",
    "fields": [{"name": "key", "type": "long"}, {"name": "x", "type": ["null", "double"]}],
}


def write_avro(path, rows: int = 500, codec: str = "null", sync_interval: int = 1_000) -> str:
    records = [{"key": key, "x": key / 2} for key in range(rows)]
    with open(path, "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(AVRO_SCHEMA), records, codec=codec, sync_interval=sync_interval)
    return str(path)


def rows_of(items) -> list[dict]:
    rows = []
    for item in items:
        assert not isinstance(item, DeadLetter), item.message
        rows.extend(item.rows() if isinstance(item, ColumnBatch) else item.rows)
    return rows


def test_row_groups_are_sliced_by_size_and_each_slice_knows_its_first_row(tmp_path):
    path = write_parquet(tmp_path / "a.parquet")
    (whole,) = parquet_slices(path, 1_000)
    assert (whole.first_group, whole.stop_group, whole.first_row, whole.rows) == (0, 3, 0, (1_000, 1_000, 1_000))
    assert whole.share_bytes == 1_000
    slices = parquet_slices(path, 999, slice_bytes=1)  # each row group larger than a slice: one each
    assert [(piece.groups, piece.first_row) for piece in slices] == [([0], 0), ([1], 1_000), ([2], 2_000)]
    assert sum(piece.share_bytes for piece in slices) <= 999


def test_a_slice_is_read_in_batches_of_projected_columns_located_by_their_file_row(tmp_path):
    path = write_parquet(tmp_path / "a.parquet")
    piece = parquet_slices(path, 0, slice_bytes=1)[1]
    seen = []
    batches = list(read_parquet_slice(piece, 300, ["key", "absent"], "key", on_bytes=seen.append))
    assert [(batch.start, len(batch)) for batch in batches] == [(1_000, 300), (1_300, 300), (1_600, 300), (1_900, 100)]
    assert batches[0].table.column_names == ["key"]  # a column the file lacks is left for the decoder to name
    assert batches[1].position_of(2) == f"{path}:1302" and batches[1].locate(2) == "key=1302"
    assert sum(seen) == piece.share_bytes


def test_a_batch_may_span_row_groups_and_the_whole_file_comes_back_once(tmp_path):
    path = write_parquet(tmp_path / "a.parquet")
    batches = list(read_parquet_file(path, 700))
    assert [len(batch) for batch in batches] == [700, 700, 700, 700, 200]
    assert [row["key"] for row in rows_of(batches)] == list(range(ROWS))


@pytest.mark.parametrize("codec", ["snappy", "gzip", "zstd", "none"])
def test_every_parquet_codec_reads(tmp_path, codec):
    path = write_parquet(tmp_path / f"a.{codec}.parquet", compression=codec)
    assert rows_of(read_parquet_file(path, 1_000)) == numbers().to_pylist()


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_every_avro_codec_reads_in_batches_located_by_record_index(tmp_path, codec):
    path = write_avro(tmp_path / f"a.{codec}.avro", codec=codec)
    batches = list(read_avro_batches(path, 200, "key"))
    assert all(isinstance(batch, RowBatch) for batch in batches)
    assert [(batch.start, len(batch)) for batch in batches] == [(0, 200), (200, 200), (400, 100)]
    assert batches[1].position_of(5) == f"{path}:205" and batches[1].locate(5) == "key=205"
    assert rows_of(batches) == [{"key": key, "x": key / 2} for key in range(500)]


def corrupt(path: str, offset: int, length: int = 16) -> None:
    data = bytearray(Path(path).read_bytes())
    data[offset : offset + length] = b"\xff" * length
    Path(path).write_bytes(bytes(data))


def test_a_damaged_row_group_is_one_dead_letter_and_the_rows_around_it_are_read(tmp_path):
    path = write_parquet(tmp_path / "a.parquet")
    corrupt(path, pq.ParquetFile(path).metadata.row_group(1).column(1).data_page_offset)
    items = list(read_parquet_file(path, 700))
    (letter,) = [item for item in items if isinstance(item, DeadLetter)]
    assert letter.reason == "corrupt_input" and letter.origin == path
    assert letter.message.startswith(f"{path}: row group 1 (rows 1,000 to 1,999) is damaged (")
    assert letter.message.endswith("its 1,000 rows from row 1,000 were not read")
    keys = [row["key"] for row in rows_of(item for item in items if not isinstance(item, DeadLetter))]
    assert keys == [*range(1_000), *range(2_000, ROWS)]  # the rows before and after: each once


def test_a_truncated_or_foreign_parquet_file_is_one_dead_letter_with_no_row(tmp_path):
    path = write_parquet(tmp_path / "a.parquet")
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(Path(path).read_bytes()[:-100])
    (letter,) = list(read_parquet_file(str(cut), 100))
    assert letter.reason == "truncated_input" and "no row of it was read" in letter.message
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"a,b\n1,2\n")
    assert parquet_slices(str(junk), 8).reason == "corrupt_input"
    (letter,) = list(read_parquet_slice(ParquetSlice(str(junk), 0, 1, 0, (1,), 8), 10))
    assert letter.reason == "corrupt_input" and "footer unreadable" in letter.message


def test_a_truncated_avro_file_keeps_the_blocks_before_the_cut(tmp_path):
    path = write_avro(tmp_path / "a.avro", rows=500, codec="deflate", sync_interval=100)
    data = Path(path).read_bytes()
    cut = tmp_path / "cut.avro"
    cut.write_bytes(data[: len(data) * 2 // 3])
    items = list(read_avro_batches(str(cut), 1_000))
    *batches, letter = items
    assert isinstance(letter, DeadLetter) and letter.reason == "truncated_input"
    read = [row["key"] for row in rows_of(batches)]
    assert 0 < len(read) < 500 and read == list(range(len(read)))
    assert f"the block from record {len(read):,} on is damaged" in letter.message


def test_a_corrupt_avro_block_or_header_is_a_corrupt_input_dead_letter(tmp_path):
    path = write_avro(tmp_path / "a.avro", rows=500, codec="deflate", sync_interval=100)
    corrupt(path, len(Path(path).read_bytes()) // 2, 64)
    *_, letter = list(read_avro_batches(path, 1_000))
    assert isinstance(letter, DeadLetter) and letter.reason == "corrupt_input"
    junk = tmp_path / "junk.avro"
    junk.write_bytes(b"not avro at all")
    (letter,) = list(read_avro_batches(str(junk), 10))
    assert letter.reason == "corrupt_input" and "not a readable Avro file" in letter.message


def test_a_storage_failure_is_raised_for_the_runner_to_retry_never_taken_for_damage(tmp_path, monkeypatch):
    from pipeline.reading import columnar_files

    path = write_parquet(tmp_path / "a.parquet")

    class Unreachable(io.RawIOBase):
        def readable(self):
            return True

        def seekable(self):
            return True

        def seek(self, offset, whence=0):
            return 0

        def tell(self):
            return 0

        def read(self, size=-1):
            raise ConnectionError("storage timed out")

    monkeypatch.setattr(columnar_files.FileSystems, "open", lambda *args, **kwargs: Unreachable())
    with pytest.raises(ConnectionError, match="storage timed out"):
        parquet_slices(path, 0)
    with pytest.raises(ConnectionError, match="storage timed out"):
        list(read_avro_batches(path, 10))


def test_file_columns_come_from_the_footer_or_the_header(tmp_path):
    parquet = write_parquet(tmp_path / "a.parquet", pa.table({"key": [1], "price": pa.array([decimal.Decimal("1.5")])}))
    assert file_columns(parquet, "parquet") == {"key": "INTEGER", "price": "NUMERIC"}
    avro = write_avro(tmp_path / "a.avro", rows=0)
    assert file_columns(avro, "avro") == {"key": "INTEGER", "x": "FLOAT"}


def test_an_avro_files_named_types_used_again_by_name_keep_their_types(tmp_path):
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "island", "type": {"type": "enum", "name": "Island", "symbols": ["A", "B"]}},
            {"name": "home", "type": "Island"},
            {"name": "tag", "type": {"type": "fixed", "name": "F4", "size": 4}},
            {"name": "spare", "type": ["null", "F4"]},
        ],
    }
    with open(tmp_path / "named.avro", "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), [{"island": "A", "home": "B", "tag": b"abcd"}])
    assert file_columns(str(tmp_path / "named.avro"), "avro") == {
        "island": "STRING",
        "home": "STRING",
        "tag": "BYTES",
        "spare": "BYTES",
    }


def test_slicing_a_footer_of_many_row_groups_takes_linear_time(tmp_path):
    import time

    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"key": np.arange(40_000)}), path, row_group_size=1)  # 40,000 row groups
    began = time.perf_counter()
    (whole,) = parquet_slices(str(path), 1_000)
    assert len(whole.rows) == 40_000 and whole.share_bytes == 1_000
    assert time.perf_counter() - began < 2.0  # a sum over the slice at each row group took 5 s


def test_batches_span_row_groups_and_dictionary_pages_located_by_their_file_row(tmp_path):
    table = pa.table(
        {"key": np.arange(50), "island": pa.array([f"isle{i % 3}" for i in range(50)]).dictionary_encode()}
    )
    path = tmp_path / "dictionary.parquet"
    pq.write_table(table, path, row_group_size=3)  # Arrow's reader ends a batch at each row group here
    batches = list(read_parquet_file(str(path), 10, key_column="key"))
    assert [(batch.start, len(batch)) for batch in batches] == [(start, 10) for start in range(0, 50, 10)]
    assert [row["key"] for row in rows_of(batches)] == list(range(50))
    assert batches[2].position_of(3) == f"{path}:23" and batches[2].locate(3) == "key=23"
    projected = list(read_parquet_file(str(path), 10, ["absent"]))  # no column read: rows still counted
    assert [(batch.start, len(batch)) for batch in projected] == [(start, 10) for start in range(0, 50, 10)]


def test_slices_are_cut_by_the_bytes_stored_and_their_shares_add_up_to_the_file(tmp_path):
    path = str(tmp_path / "zeros.parquet")
    pq.write_table(pa.table({"x": np.zeros(30_000)}), path, row_group_size=10_000)  # 80 kB a row group, 1 kB stored
    stored = [pq.ParquetFile(path).metadata.row_group(group).column(0).total_compressed_size for group in range(3)]
    assert max(stored) < 10_000
    (whole,) = parquet_slices(path, 1_001, slice_bytes=sum(stored))
    assert whole.groups == [0, 1, 2] and whole.share_bytes == 1_001
    slices = parquet_slices(path, 1_001, slice_bytes=1)
    assert len(slices) == 3 and sum(piece.share_bytes for piece in slices) == 1_001


def test_progress_reaches_the_files_size_damaged_row_groups_counted(tmp_path):
    path = write_parquet(tmp_path / "a.parquet")
    corrupt(path, pq.ParquetFile(path).metadata.row_group(1).column(1).data_page_offset)
    seen: list[int] = []
    for piece in parquet_slices(path, 999_999):
        list(read_parquet_slice(piece, 333, on_bytes=seen.append))
    assert sum(seen) == 999_999


def test_a_worker_reads_a_files_footer_once_for_all_its_slices_of_that_version(tmp_path, monkeypatch):
    from pipeline.reading import columnar_files

    footers_given = []
    parquet_file = pq.ParquetFile

    def recording(source, metadata=None, **options):
        footers_given.append(metadata is not None)
        return parquet_file(source, metadata=metadata, **options)

    path = write_parquet(tmp_path / "a.parquet")
    slices = parquet_slices(path, 100, slice_bytes=1, updated=1.5)
    monkeypatch.setattr(columnar_files.pq, "ParquetFile", recording)
    assert [row["key"] for piece in slices for row in rows_of(read_parquet_slice(piece, 1_000))] == list(range(ROWS))
    assert footers_given == [False, True, True]
    write_parquet(path, numbers(ROWS).set_column(0, "key", pa.array(np.arange(ROWS) + 7)))  # the file changed
    changed = parquet_slices(path, 100, slice_bytes=1, updated=2.5)
    footers_given.clear()
    assert [row["key"] for row in rows_of(read_parquet_slice(changed[0], 1_000))] == list(range(7, 1_007))
    assert footers_given == [False]  # the changed file's footer read anew
