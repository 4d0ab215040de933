"""Reading text files: bytes per line, batches of the requested size, gzip by name, damage as dead letters;
batching messages: each batch within one window of publish time, and stamped inside it."""

from __future__ import annotations

import gzip

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow, TimestampedValue

from pipeline.data.formats import AVRO
from pipeline.job.sources import BatchMessages, ReadFileRecords, ReadWholeFiles


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


def test_read_text_records_dead_letters_a_corrupt_file_and_reads_the_others(tmp_path):
    (tmp_path / "a.txt.gz").write_bytes(b"not gzip at all")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"3:z\n"))
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadFileRecords(str(tmp_path / "*"), "key_values", batch_size=10)
        records = batches | beam.FlatMap(lambda batch: [(batch.origin, payload) for payload in batch.payloads])
        assert_that(records, equal_to([(str(tmp_path / "b.txt.gz"), b"3:z")]))
        reasons = dead_letters | beam.Map(lambda letter: (letter.origin, letter.reason, letter.payload))
        assert_that(reasons, equal_to([(str(tmp_path / "a.txt.gz"), "corrupt_input", b"")]), label="dead letter")


def test_line_files_are_read_in_ranges_where_uncompressed_and_whole_where_compressed(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"key,x\r\n" + b"".join(b"%d,%d\r\n" % (key, key) for key in range(200)))
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(b"key,x\n7,7\n8,8\n"))
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(b"key,x\n9,9\n")[:-8])  # no trailer
    (tmp_path / "d.csv").write_bytes(b"")
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadFileRecords(str(tmp_path / "*"), "csv", batch_size=16, range_bytes=256)
        records = batches | beam.FlatMap(
            lambda batch: [
                (batch.position_of(index), batch.header, payload) for index, payload in enumerate(batch.payloads)
            ]
        )
        # a file of several ranges: every line by the byte it starts at, the first range's too
        plain = [
            (f"{tmp_path}/a.csv@{offset}", b"key,x\r", b"%d,%d\r" % (key, key))
            for key, offset in ((key, 7 + sum(len(b"%d,%d\r\n" % (k, k)) for k in range(key))) for key in range(200))
        ]
        packed = [(f"{tmp_path}/b.csv.gz:{line}", b"key,x", b"%d,%d" % (key, key)) for line, key in ((2, 7), (3, 8))]
        assert_that(records, equal_to(plain + packed + [(f"{tmp_path}/c.csv.gz:2", b"key,x", b"9,9")]))
        reasons = dead_letters | beam.Map(lambda letter: (letter.origin, letter.reason))
        assert_that(reasons, equal_to([(str(tmp_path / "c.csv.gz"), "truncated_input")]), label="dead letter")


def test_fewer_rows_read_than_the_table_held_is_a_dead_letter():
    from pipeline.job.sources import _CheckRowCountFn

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


def test_a_folder_input_reads_every_file_under_it_but_the_hidden_ones(tmp_path):
    (tmp_path / "t" / "_temporary").mkdir(parents=True)
    (tmp_path / "t" / "day=1").mkdir()
    (tmp_path / "t" / "part-0.txt").write_bytes(b"1:x\n")
    (tmp_path / "t" / "day=1" / "part-1.txt.gz").write_bytes(gzip.compress(b"2:y\n"))
    (tmp_path / "t" / "_SUCCESS").write_bytes(b"")
    (tmp_path / "t" / ".part-0.txt.crc").write_bytes(b"crc")
    (tmp_path / "t" / "_temporary" / "part-9.txt").write_bytes(b"9:half written\n")
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadFileRecords(f"{tmp_path}/t/", "key_values", batch_size=10)
        records = batches | beam.FlatMap(lambda batch: batch.payloads)
        assert_that(records, equal_to([b"1:x", b"2:y"]))
        assert_that(dead_letters, equal_to([]), label="no dead letters")


def test_avro_files_are_read_as_row_batches_located_by_record_index(tmp_path):
    import fastavro

    schema = fastavro.parse_schema({"type": "record", "name": "R", "fields": [{"name": "key", "type": "long"}]})
    with (tmp_path / "a.avro").open("wb") as handle:
        fastavro.writer(handle, schema, [{"key": key} for key in range(5)], codec="deflate")
    (tmp_path / "b.avro").write_bytes(b"Obj\x01")
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadFileRecords(str(tmp_path / "*.avro"), AVRO, 2, key_column="key")
        located = batches | beam.FlatMap(lambda batch: [batch.position_of(index) for index in range(len(batch))])
        assert_that(located, equal_to([f"{tmp_path}/a.avro:{index}" for index in range(5)]))
        reasons = dead_letters | beam.Map(lambda letter: (letter.origin, letter.reason))
        assert_that(reasons, equal_to([(str(tmp_path / "b.avro"), "truncated_input")]), label="dead letter")


def published(at: float, number: int) -> TimestampedValue:
    """A message as ReadFromPubSub gives it: timestamped with its publish time."""
    return TimestampedValue(PubsubMessage(f"{number}:x".encode(), {}, message_id=str(number)), at)


class _Described(beam.DoFn):
    """A batch as (its window's start, its timestamp, its message ids, its origin)."""

    def process(self, batch, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        if window == GlobalWindow():
            yield None, None, sorted(batch.locations), batch.origin
        else:
            yield float(window.start), float(timestamp), sorted(batch.locations), batch.origin


SUBSCRIPTION = "projects/p/subscriptions/s"


def assert_batches(window_s: int | None, expected: list) -> None:
    stream = (
        test_stream.TestStream()
        .add_elements([published(1, 1), published(2, 2)])
        .advance_processing_time(30)  # a backlog: read well after its window ended on the clock
        .add_elements([published(3, 3), published(12, 4)])
        .advance_watermark_to(25)  # both windows of 10 s are done
        .add_elements([published(5, 5), published(20, 6)])  # 5 is late: behind the watermark
        .advance_watermark_to(35)  # every window done before the end of the stream
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as pipeline:
        batches = pipeline | stream | BatchMessages(SUBSCRIPTION, 3, max_wait_s=0.5, window_s=window_s)
        assert_that(batches | beam.ParDo(_Described()), equal_to(expected))


def test_a_batch_of_messages_lies_in_the_window_of_its_publish_times_and_is_stamped_inside_it():
    assert_batches(
        10,
        [
            (0.0, 9.999999, ["1", "2", "3"], SUBSCRIPTION),
            (10.0, 19.999999, ["4"], SUBSCRIPTION),  # flushed at its window's end, stamped inside it
            (0.0, 9.999999, ["5"], SUBSCRIPTION),  # late, and still in the window it was published in
            (20.0, 29.999999, ["6"], SUBSCRIPTION),
        ],
    )


def test_without_windows_messages_are_batched_by_count_alone():
    assert_batches(None, [(None, None, ["1", "2", "3"], SUBSCRIPTION), (None, None, ["4", "5", "6"], SUBSCRIPTION)])
