"""Reading a line file a byte range at a time: every line read by exactly one range, whatever the cut,
exactly as the whole-file reader reads it; each located by line number or byte offset."""

from __future__ import annotations

import gzip

from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata

from pipeline.reading.line_ranges import LineRange, file_ranges, read_header, read_range, split_file
from pipeline.reading.readers import read_line_batches


def lines_of(line_range: LineRange, batch_size: int = 2, csv: bool = False, read_bytes: int = 1 << 22) -> list:
    return [lines for read in read_range(line_range, batch_size, csv=csv, read_bytes=read_bytes) for lines in read]


def records(line_range: LineRange, csv: bool = False, read_bytes: int = 1 << 22) -> list[tuple[str, bytes]]:
    """(position, payload) of each record a range reads."""
    batches = [lines.batch() for lines in lines_of(line_range, csv=csv, read_bytes=read_bytes)]
    return [(batch.position_of(index), payload) for batch in batches for index, payload in enumerate(batch.payloads)]


def whole_file(path, csv: bool = False) -> list[bytes]:
    readable = fileio.ReadableFile(FileMetadata(str(path), path.stat().st_size))
    return [payload for batch in read_line_batches(readable, 3, header=csv) for payload in batch.payloads]


def test_a_line_belongs_to_the_range_its_first_byte_is_in(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"aa\nbbbb\ncc\n")  # lines start at 0, 3 and 8
    name = str(path)
    assert records(LineRange(name, 0, 3)) == [(f"{name}@0", b"aa")]  # the stop falls on a line's start
    assert records(LineRange(name, 3, 8)) == [(f"{name}@3", b"bbbb")]  # a range starting on a line's start
    assert records(LineRange(name, 0, 4)) == [(f"{name}@0", b"aa"), (f"{name}@3", b"bbbb")]  # read past the stop
    assert records(LineRange(name, 4, 11)) == [(f"{name}@8", b"cc")]  # starts inside a line: skips its rest
    assert records(LineRange(name, 2, 3)) == []  # a range holding only a newline holds no line
    assert records(LineRange(name, 4, 8)) == []  # nor one inside a line


def test_every_cut_of_a_file_reads_each_line_once_as_the_whole_file_reader_does(tmp_path):
    """CRLF endings, an empty line, a byte-order mark, no newline at the end; each range read a byte at a time too."""
    path = tmp_path / "in.txt"
    data = b"\xef\xbb\xbf1:a\r\n22:bb\r\n\n333:ccc\n4:\xff\n55:e"
    path.write_bytes(data)
    expected = whole_file(path)
    assert expected[0] == b"1:a\r" and expected[-1] == b"55:e"
    for first in range(1, len(data)):
        for second in range(first + 1, len(data) + 1):
            cuts = [(0, first), (first, second), (second, len(data))]
            got = [payload for start, stop in cuts for _, payload in records(LineRange(str(path), start, stop))]
            assert got == expected, cuts
    one_byte_reads = records(LineRange(str(path), 5, len(data)), read_bytes=1)
    assert one_byte_reads == records(LineRange(str(path), 5, len(data)))


def every_cut(path, csv: bool = False) -> list[list[bytes]]:
    """What each cut of a file in up to three ranges reads, the file's only (numbered) range too, with the
    header of a file of several ranges read as `file_ranges` reads it."""
    data, name = path.read_bytes(), str(path)
    header = read_header(name) if csv and data else None
    reads = [[payload for _, payload in records(LineRange(name, 0, len(data), numbered=True), csv=csv)]]
    for first in range(1, len(data)):
        for second in range(first + 1, len(data) + 1):
            cuts = [(0, first), (first, second), (second, len(data))]
            reads.append(
                [payload for start, stop in cuts for _, payload in records(LineRange(name, start, stop, header), csv)]
            )
    return reads


def test_a_file_of_a_byte_order_mark_alone_reads_as_the_whole_file_reader_reads_it(tmp_path):
    """Nothing for the mark alone (no empty record); one empty line for the mark and a newline."""
    for data, expected in ((b"\xef\xbb\xbf", []), (b"\xef\xbb\xbf\n", [b""]), (b"\xef\xbb\xbf\n\n", [b"", b""])):
        path = tmp_path / "in.txt"
        path.write_bytes(data)
        assert whole_file(path) == expected
        assert all(read == expected for read in every_cut(path)), data
        assert file_ranges(str(path), len(data), "jsonl") == [LineRange(str(path), 0, len(data), numbered=True)]


def test_every_cut_of_a_csv_file_reads_its_rows_as_the_whole_file_reader_does(tmp_path):
    """Header only (with and without a newline or a mark), a mark alone, rows with CRLF and none at the end."""
    for data in (
        b"key,x",
        b"key,x\n",
        b"\xef\xbb\xbfkey,x\r\n",
        b"\xef\xbb\xbf",
        b"\xef\xbb\xbf\n",
        b"\xef\xbb\xbfkey,x\r\n1,0.5\r\n\n2,0.25",
    ):
        path = tmp_path / "in.csv"
        path.write_bytes(data)
        expected = whole_file(path, csv=True)
        assert all(read == expected for read in every_cut(path, csv=True)), data


def test_positions_are_line_numbers_in_a_file_of_one_range_and_byte_offsets_in_every_range_of_others(tmp_path):
    """Where a record is depends on the file alone: a file of several ranges is located by bytes in all of
    them, its first too (a byte-order mark counted), so that no split moves a record to another form."""
    path = tmp_path / "in.txt"
    path.write_bytes(b"\xef\xbb\xbfa\nbb\r\nc")  # lines start at 0, 5 and 9
    name = str(path)
    assert split_file(name, 10) == [LineRange(name, 0, 10, numbered=True)]
    assert records(LineRange(name, 0, 10, numbered=True)) == [
        (f"{name}:1", b"a"),
        (f"{name}:2", b"bb\r"),
        (f"{name}:3", b"c"),
    ]
    assert records(LineRange(name, 0, 9)) == [(f"{name}@0", b"a"), (f"{name}@5", b"bb\r")]
    assert records(LineRange(name, 1, 10)) == [(f"{name}@5", b"bb\r"), (f"{name}@9", b"c")]
    batch = lines_of(LineRange(name, 0, 10), batch_size=3)[0]
    assert batch.starts() == [0, 5, 9] and batch.last_start == 9  # as in the file, the mark counted


def test_a_csv_header_is_read_once_skipped_by_the_first_range_and_handed_to_the_others(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbfkey,x\n1,0.5\n2,0.25\n3,1\n")
    ranges = file_ranges(str(path), path.stat().st_size, "csv", range_bytes=12)  # lines start at 9, 15, 22
    assert len(ranges) > 1 and {line_range.header for line_range in ranges} == {b"key,x"}
    batches = [lines.batch() for line_range in ranges for lines in lines_of(line_range, csv=True)]
    assert {batch.header for batch in batches} == {b"key,x"}
    got = [(batch.position_of(index), payload) for batch in batches for index, payload in enumerate(batch.payloads)]
    assert got == [(f"{path}@9", b"1,0.5"), (f"{path}@15", b"2,0.25"), (f"{path}@22", b"3,1")]
    assert [payload for _, payload in got] == whole_file(path, csv=True)
    (one,) = file_ranges(str(path), path.stat().st_size, "csv")  # one range: its lines numbered, the header 1
    assert one.header is None  # not read ahead: its reader takes it from the first line, the file opened once
    batches = [lines.batch() for lines in lines_of(one, csv=True)]
    got = [(batch.position_of(index), payload) for batch in batches for index, payload in enumerate(batch.payloads)]
    assert got == [(f"{path}:2", b"1,0.5"), (f"{path}:3", b"2,0.25"), (f"{path}:4", b"3,1")]
    assert {batch.header for batch in batches} == {b"key,x"}  # without the mark


def test_a_file_is_split_in_ranges_of_about_the_size_asked(tmp_path):
    assert [(r.start, r.stop) for r in split_file("f", 100, range_bytes=30)] == [(0, 30), (30, 60), (60, 90), (90, 100)]
    # no last range under a quarter of the size: it joins the one before, as Beam's OffsetRange.split does
    assert [(r.start, r.stop) for r in split_file("f", 95, range_bytes=30)] == [(0, 30), (30, 60), (60, 95)]
    assert split_file("f", 0, range_bytes=30) == []
    assert split_file("f", 36, range_bytes=30) == [LineRange("f", 0, 36, numbered=True)]  # one range: numbered
    (tmp_path / "empty.txt").write_bytes(b"")
    assert file_ranges(str(tmp_path / "empty.txt"), 0, "key_values") == []  # no range, no record


def test_compressed_files_are_read_whole_even_empty(tmp_path):
    path = tmp_path / "in.csv.gz"
    path.write_bytes(gzip.compress(b"key,x\n1,2\n"))
    size = path.stat().st_size
    assert file_ranges(str(path), size, "csv", range_bytes=4) == [LineRange(str(path), 0, size, whole=True)]
    assert file_ranges(str(tmp_path / "e.txt.zst"), 0, "jsonl") == [
        LineRange(str(tmp_path / "e.txt.zst"), 0, 0, whole=True)
    ]


def test_the_header_is_the_first_line_without_its_newline(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"a,b" * 30_000 + b"\r\n1,2\n")  # longer than one small read
    assert read_header(str(path)) == b"a,b" * 30_000 + b"\r"  # the decoders strip the \r, as for every line
    (tmp_path / "one.csv").write_bytes(b"a,b")
    assert read_header(str(tmp_path / "one.csv")) == b"a,b"
