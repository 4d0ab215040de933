"""Launch-time checks of files: what the first record says, where outputs can go."""

from __future__ import annotations

import gzip

import pytest

from pipeline.errors import LaunchError
from pipeline.launch.file_checks import check_writable, first_batch, first_record_width, matching_files


def test_first_record_width_skips_blank_and_broken_lines_and_reads_gzip(tmp_path):
    path = tmp_path / "in.txt.gz"
    path.write_bytes(gzip.compress(b"\n  \nno key\n7:1,2,3\n8:1,2\n"))
    assert first_record_width(first_batch(matching_files(str(path)), "key_values")) == 3
    (tmp_path / "junk.txt").write_bytes(b"\xff\xfe\n\n")
    assert first_record_width(first_batch(matching_files(str(tmp_path / "junk.txt")), "key_values")) is None


def test_first_batch_passes_over_damaged_files_and_refuses_only_when_none_can_be_read(tmp_path):
    (tmp_path / "a.txt.gz").write_bytes(b"not gzip")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"7:1,2\n"))
    assert first_batch(matching_files(str(tmp_path / "*.gz")), "key_values").payloads == [b"7:1,2"]
    with pytest.raises(LaunchError, match=r"a\.txt\.gz: cannot read the file: .*not a valid gzip stream"):
        first_batch(matching_files(str(tmp_path / "a.txt.gz")), "key_values")
    (tmp_path / "empty.txt").write_bytes(b"")
    assert first_batch(matching_files(str(tmp_path / "empty.txt")), "key_values") is None


def test_matching_files_are_sorted_and_nothing_is_an_error(tmp_path):
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / "a.txt").write_text("x")
    matched = matching_files(str(tmp_path / "*.txt"))
    assert [metadata.path for metadata in matched] == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    assert [metadata.size_in_bytes for metadata in matched] == [1, 1]
    with pytest.raises(LaunchError, match="no file matches"):
        matching_files(str(tmp_path / "*.csv"))


def test_check_writable_leaves_nothing_behind(tmp_path):
    check_writable("--output", str(tmp_path / "out" / "predictions"))
    assert list((tmp_path / "out").iterdir()) == []


def write_parts(folder) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "_temporary").mkdir(parents=True)
    for part in range(2):
        pq.write_table(pa.table({"key": [part], "x": [0.5]}), folder / f"part-{part}.snappy.parquet")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".part-0.snappy.parquet.crc").write_bytes(b"crc")
    (folder / "_temporary" / "part-9.parquet").write_bytes(b"half written")


def test_a_folder_input_is_every_file_under_it_but_the_hidden_ones(tmp_path):
    from pipeline.launch.file_checks import input_folder

    write_parts(tmp_path / "t")
    assert input_folder(str(tmp_path / "t")) == f"{tmp_path}/t/"
    assert input_folder(f"{tmp_path}/t/") == f"{tmp_path}/t/"
    assert input_folder(str(tmp_path / "t" / "*.parquet")) == str(tmp_path / "t" / "*.parquet")  # a pattern stays one
    assert input_folder(str(tmp_path / "t" / "_SUCCESS")) == str(tmp_path / "t" / "_SUCCESS")  # so does a file
    matched = [metadata.path for metadata in matching_files(f"{tmp_path}/t/")]
    assert matched == [f"{tmp_path}/t/part-0.snappy.parquet", f"{tmp_path}/t/part-1.snappy.parquet"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_bytes(b"")
    with pytest.raises(LaunchError, match=r"the folder holds no file \(names starting with _ or \. are skipped\)"):
        matching_files(f"{tmp_path}/empty/")


def test_a_parquet_or_avro_input_has_its_format_first_rows_and_columns_read_at_launch(tmp_path):
    import fastavro

    from pipeline.data.batches import ColumnBatch, RowBatch
    from pipeline.launch.file_checks import check_file_input

    write_parts(tmp_path / "t")
    found = check_file_input(str(tmp_path / "t"), "auto")
    assert (found.pattern, found.record_format, found.sizes[1]) == (f"{tmp_path}/t/", "parquet", 2)
    assert isinstance(found.first, ColumnBatch) and found.first.rows() == [{"key": 0, "x": 0.5}]
    assert found.columns.columns == {"key": "INTEGER", "x": "FLOAT"} and found.columns.first_row == {"key": 0, "x": 0.5}
    schema = {"type": "record", "name": "R", "fields": [{"name": "key", "type": "string"}]}
    with (tmp_path / "rows.data").open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), [{"key": "a"}])
    found = check_file_input(str(tmp_path / "rows.data"), "AVRO")
    assert isinstance(found.first, RowBatch) and found.first.rows == [{"key": "a"}] and found.first.start == 0
    assert found.columns.columns == {"key": "STRING"}
    with pytest.raises(LaunchError, match=r"--format=orc: must be one of auto, key_values, .*, parquet, avro"):
        check_file_input(str(tmp_path / "rows.data"), "orc")
    assert check_file_input(str(tmp_path / "rows.data"), "jsonl").columns is None  # line formats have no schema


def test_a_damaged_parquet_file_is_passed_over_at_launch_as_the_job_passes_over_it(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.parquet").write_bytes(b"PAR1 and no footer")
    pq.write_table(pa.table({"key": [5]}), tmp_path / "b.parquet")
    assert first_batch(matching_files(str(tmp_path / "*.parquet")), "parquet").rows() == [{"key": 5}]
    with pytest.raises(LaunchError, match=r"a\.parquet: cannot read the file: .*not a readable Parquet file"):
        first_batch(matching_files(str(tmp_path / "a.parquet")), "parquet")


def test_folder_placeholder_objects_are_no_files_and_do_not_choose_the_format(tmp_path, monkeypatch):
    from pipeline.launch.file_checks import check_file_input
    from tests.folder_placeholders import list_placeholders

    write_parts(tmp_path / "t")
    list_placeholders(monkeypatch)
    found = check_file_input(f"{tmp_path}/t/", "auto")
    assert (found.record_format, found.file_count) == ("parquet", 2)
    assert [metadata.path for metadata in matching_files(str(tmp_path / "t" / "*.parquet"))] == [
        f"{tmp_path}/t/part-0.snappy.parquet",
        f"{tmp_path}/t/part-1.snappy.parquet",
    ]


def test_auto_takes_the_format_of_the_first_file_whose_name_says_one():
    from apache_beam.io.filesystem import FileMetadata

    from pipeline.launch.file_checks import record_format_of

    files = [FileMetadata(path, 1) for path in ("gs://b/t/README", "gs://b/t/a.avro", "gs://b/t/b.parquet")]
    assert record_format_of("auto", "gs://b/t/", files) == "avro"
    assert record_format_of("auto", "gs://b/t/*.csv", files) == "csv"
    assert record_format_of(None, "gs://b/t/", files[:1]) == "key_values"
