"""Reading files into batches of records, Beam-free: lines, headers, compression, damage, read-ahead."""

from __future__ import annotations

import gzip

from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata

from pipeline.data.dead_letters import DeadLetter
from pipeline.reading.readers import read_line_batches


def readable(path) -> fileio.ReadableFile:
    return fileio.ReadableFile(FileMetadata(str(path), path.stat().st_size))


def test_lines_are_bytes_in_batches_and_the_last_line_needs_no_newline(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"1:a\r\n2:b\n\n3:\xff\n4:d")
    batches = list(read_line_batches(readable(path), batch_size=2))
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert [payload for batch in batches for payload in batch.payloads] == [b"1:a\r", b"2:b", b"", b"3:\xff", b"4:d"]
    assert {batch.origin for batch in batches} == {str(path)}
    assert [batch.start for batch in batches] == [1, 3, 5]  # line numbers
    assert batches[1].position_of(1) == f"{path}:4"


def test_a_csv_header_rides_with_every_batch_and_is_not_a_record(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"key,x\n1,0.5\n2,0.25\n3,1\n")
    batches = list(read_line_batches(readable(path), batch_size=2, header=True))
    assert [batch.payloads for batch in batches] == [[b"1,0.5", b"2,0.25"], [b"3,1"]]
    assert {batch.header for batch in batches} == {b"key,x"}
    assert [batch.start for batch in batches] == [2, 4]


def test_gzip_is_detected_from_the_name_and_lines_span_read_chunks(tmp_path):
    lines = [f"{key}:".encode() + b"0.5," * 3000 + b"1" for key in range(2000)]  # ~18 MB, several chunks
    path = tmp_path / "in.txt.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    payloads = [payload for batch in read_line_batches(readable(path), batch_size=300) for payload in batch.payloads]
    assert payloads == lines


def test_prefetched_keeps_order_raises_errors_and_stops_early():
    from pipeline.reading.readers import prefetched

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


def test_a_byte_order_mark_at_the_start_of_a_file_is_not_part_of_the_first_key(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes(b"\xef\xbb\xbf1:0.5\r\n2:0.25\r\n")
    payloads = [payload for batch in read_line_batches(readable(path), batch_size=10) for payload in batch.payloads]
    assert payloads == [b"1:0.5\r", b"2:0.25\r"]


def test_a_truncated_gzip_ends_in_one_dead_letter_holding_the_cut_line(tmp_path):
    lines = [b"%d:%s" % (key, b"0.5," * 200 + b"1") for key in range(5000)]
    whole = gzip.compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    items = list(read_line_batches(readable(path), batch_size=1000))
    *batches, dead_letter = items
    records = [payload for batch in batches for payload in batch.payloads]
    assert 0 < len(records) < len(lines) and records == lines[: len(records)]  # whole lines only, in order
    assert isinstance(dead_letter, DeadLetter) and dead_letter.reason == "truncated_input"
    assert dead_letter.origin == str(path)
    assert lines[len(records)].startswith(dead_letter.payload)  # the line the cut went through
    assert "compressed byte" in dead_letter.message and "the rest of the file was not read" in dead_letter.message
