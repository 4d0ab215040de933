"""Reading text files: bytes per line, batches of the requested size, gzip by name, damage as dead letters."""

from __future__ import annotations

import gzip

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import DeadLetter
from pipeline.sources import ReadFileRecords, ReadWholeFiles, read_line_batches


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


def test_read_text_records_reads_every_matching_file(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"1:x\n2:y\n")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"3:z\n"))
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadFileRecords(str(tmp_path / "*"), "key_values", batch_size=10)
        records = batches | beam.FlatMap(lambda batch: [(batch.origin, payload) for payload in batch.payloads])
        assert_that(
            records,
            equal_to(
                [
                    (str(tmp_path / "a.txt"), b"1:x"),
                    (str(tmp_path / "a.txt"), b"2:y"),
                    (str(tmp_path / "b.txt.gz"), b"3:z"),
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


def test_read_text_records_dead_letters_a_corrupt_file_and_reads_the_others(tmp_path):
    (tmp_path / "a.txt.gz").write_bytes(b"not gzip at all")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"3:z\n"))
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadFileRecords(str(tmp_path / "*"), "key_values", batch_size=10)
        records = batches | beam.FlatMap(lambda batch: [(batch.origin, payload) for payload in batch.payloads])
        assert_that(records, equal_to([(str(tmp_path / "b.txt.gz"), b"3:z")]))
        reasons = dead_letters | beam.Map(lambda letter: (letter.origin, letter.reason, letter.payload))
        assert_that(reasons, equal_to([(str(tmp_path / "a.txt.gz"), "corrupt_input", b"")]), label="dead letter")


def test_fewer_rows_read_than_the_table_held_is_a_dead_letter():
    from pipeline.sources import _CheckRowCountFn

    with beam.Pipeline() as pipeline:
        short = (
            pipeline | "Short" >> beam.Create([9_990]) | "Check short" >> beam.ParDo(_CheckRowCountFn(10_000, "p:d.t"))
        )
        whole = (
            pipeline | "Whole" >> beam.Create([10_000]) | "Check whole" >> beam.ParDo(_CheckRowCountFn(10_000, "p:d.t"))
        )
        described = short | beam.Map(lambda letter: (letter.origin, letter.reason, letter.message.split(":")[0]))
        assert_that(
            described,
            equal_to([("p:d.t", "incomplete_read", "read 9,990 rows of the 10,000 the table held at launch")]),
        )
        assert_that(whole, equal_to([]), label="a whole read has none")


def test_whole_files_are_batched_by_size_as_well_as_by_count(tmp_path):
    for index in range(6):
        (tmp_path / f"big{index}.bin").write_bytes(bytes(200_000))  # four 64 KiB shares each
    for index in range(8):
        (tmp_path / f"small{index}.bin").write_bytes(b"x")
    with beam.Pipeline() as pipeline:
        batches, _ = pipeline | ReadWholeFiles(str(tmp_path / "*.bin"), batch_size=8, spread_files=True)
        shares = batches | beam.Map(lambda batch: sum(1 + len(payload) // 65536 for payload in batch.payloads))
        files = batches | beam.Map(len) | beam.CombineGlobally(sum)
        largest = shares | beam.CombineGlobally(max) | beam.Map(lambda share: share <= 8)
        assert_that(largest, equal_to([True]), label="no batch over eight shares")
        assert_that(files, equal_to([14]), label="every file read once")
