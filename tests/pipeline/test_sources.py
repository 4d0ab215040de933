"""Reading text files: bytes per line, batches of the requested size, gzip by name."""

from __future__ import annotations

import gzip

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import RawRecord
from pipeline.sources import ReadTextRecords, read_line_batches


def readable(path) -> fileio.ReadableFile:
    return fileio.ReadableFile(FileMetadata(str(path), path.stat().st_size))


def test_lines_are_bytes_in_batches_and_the_last_line_needs_no_newline(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"1:a\r\n2:b\n\n3:\xff\n4:d")
    batches = list(read_line_batches(readable(path), batch_size=2))
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert [record.payload for batch in batches for record in batch] == [b"1:a\r", b"2:b", b"", b"3:\xff", b"4:d"]
    assert {record.origin for batch in batches for record in batch} == {str(path)}


def test_gzip_is_detected_from_the_name_and_lines_span_read_chunks(tmp_path):
    lines = [f"{key}:".encode() + b"0.5," * 3000 + b"1" for key in range(2000)]  # ~18 MB, several chunks
    path = tmp_path / "in.txt.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    payloads = [record.payload for batch in read_line_batches(readable(path), batch_size=300) for record in batch]
    assert payloads == lines


def test_read_text_records_reads_every_matching_file(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"1:x\n2:y\n")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"3:z\n"))
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadTextRecords(str(tmp_path / "*"), batch_size=10)
        records = batches | beam.FlatMap(lambda batch: batch)
        assert_that(
            records,
            equal_to(
                [
                    RawRecord(str(tmp_path / "a.txt"), b"1:x"),
                    RawRecord(str(tmp_path / "a.txt"), b"2:y"),
                    RawRecord(str(tmp_path / "b.txt.gz"), b"3:z"),
                ]
            ),
        )
        assert_that(dead_letters, equal_to([]), label="no dead letters")


def test_prefetched_keeps_order_raises_errors_and_stops_early():
    from pipeline.sources import prefetched

    assert list(prefetched(iter(range(100)), depth=2)) == list(range(100))

    def failing():
        yield 1
        raise OSError("disk gone")

    consumed = []
    try:
        for item in prefetched(failing()):
            consumed.append(item)
    except OSError as error:
        assert str(error) == "disk gone"
    else:
        raise AssertionError("the producer's error was swallowed")
    assert consumed == [1]

    endless = prefetched(iter(range(10**9)), depth=2)
    assert next(endless) == 0
    endless.close()  # the consumer stops early: the producer thread must not hang
