"""The decode step in a real pipeline: every batch decoded, one batch ahead, in its window, every record counted."""

from __future__ import annotations

import threading

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import FixedWindows, TimestampedValue

from pipeline.data.batches import InstanceBatch, RecordBatch
from pipeline.data.dead_letters import Reason, Rejection
from pipeline.data.decoders import Decoded, decoder_for
from pipeline.data.decoders.base import dead_letters
from pipeline.data.instances import KEY_INT, Feeding
from pipeline.data.udf import UdfCode
from pipeline.job import metrics
from pipeline.job.decode import DecodeRecords
from pipeline.model.signatures import TensorSpec


class DigitsDecoder:
    """Records that are digits become instances keyed by their value; anything else is a dead letter.
    Each instance notes the thread that decoded it."""

    def decode(self, batch: RecordBatch) -> Decoded:
        keys, positions, rejections = [], [], []
        for position, payload in enumerate(batch.payloads):
            if payload.isdigit():
                keys.append(int(payload))
                positions.append(position)
            else:
                rejections.append((position, Rejection(Reason.NON_NUMERIC, f"{payload!r} is not a number")))
        instances = []
        if keys:
            thread = np.array([threading.current_thread().name] * len(keys), dtype=object)
            features = {"x": np.array(keys, dtype=np.float32), "thread": thread}
            instances.append(InstanceBatch(np.array(keys, dtype=np.int64), features, batch, np.array(positions)))
        return Decoded(instances, dead_letters(batch, rejections))


class FailingDecoder:
    def decode(self, batch: RecordBatch) -> Decoded:
        raise RuntimeError(f"decoder broke on {batch.origin}")


def batches(count: int, per_batch: int = 3, bad_every: int = 0) -> list[RecordBatch]:
    """`count` batches of file f<i>.txt; record j of a batch is bad when bad_every divides j + 1."""
    result = []
    for index in range(count):
        payloads = [
            b"bad" if bad_every and (record + 1) % bad_every == 0 else str(index * 100 + record).encode()
            for record in range(per_batch)
        ]
        result.append(RecordBatch(f"f{index}.txt", 1, payloads))
    return result


def instance_rows(instances: InstanceBatch) -> list[tuple]:
    return [
        (instances.source.origin, int(key), instances.source.position_of(int(position)))
        for key, position in zip(instances.keys, instances.positions, strict=True)
    ]


def expected_rows(source: list[RecordBatch]) -> list[tuple]:
    return [
        (batch.origin, int(payload), batch.position_of(index))
        for batch in source
        for index, payload in enumerate(batch.payloads)
        if payload.isdigit()
    ]


def expected_letters(source: list[RecordBatch]) -> list[tuple]:
    return [
        (batch.origin, payload, batch.position_of(index), Reason.NON_NUMERIC)
        for batch in source
        for index, payload in enumerate(batch.payloads)
        if not payload.isdigit()
    ]


def letter_rows(letter) -> tuple:
    return (letter.origin, letter.payload, letter.position, letter.reason)


class _Tag(beam.DoFn):
    def __init__(self, kind: str, window: bool):
        self._kind = kind
        self._window = window

    def process(self, row, window=beam.DoFn.WindowParam):
        yield (self._kind, *row, int(window.start)) if self._window else (self._kind, *row)


def both_outputs(instances, letters, window: bool = False):
    """Instances and dead letters as one collection of tagged rows, the window's start last where asked
    (one assert_that per pipeline, as each costs a fraction of a second)."""
    tagged_instances = instances | beam.FlatMap(instance_rows) | "Tag instances" >> beam.ParDo(_Tag("instance", window))
    tagged_letters = letters | beam.Map(letter_rows) | "Tag letters" >> beam.ParDo(_Tag("letter", window))
    return (tagged_instances, tagged_letters) | beam.Flatten()


def expected_outputs(source: list[RecordBatch], windows: list[int] | None = None) -> list[tuple]:
    """The tagged rows of both outputs; with `windows`, the start of batch i's window last."""
    rows = []
    for index, batch in enumerate(source):
        window = () if windows is None else (windows[index],)
        rows += [("instance", *row, *window) for row in expected_rows([batch])]
        rows += [("letter", *row, *window) for row in expected_letters([batch])]
    return rows


def test_every_batch_is_decoded_in_its_window_and_every_record_counted():
    """Twelve batches, each at its own time in its own window: every good record becomes an instance, every bad
    one a dead letter on the tagged output; outputs that leave late (the last one in finish_bundle, where the
    window must be given explicitly) keep their batch's window; records_read counts good and bad alike."""
    source = batches(12, per_batch=4, bad_every=3)
    pipeline = test_pipeline.TestPipeline()
    timed = (
        pipeline
        | beam.Create(list(enumerate(source)))
        | beam.Map(lambda item: TimestampedValue(item[1], item[0] * 10 + 5))  # batch i at time 10 i + 5
        | beam.WindowInto(FixedWindows(10))
    )
    instances, letters = timed | DecodeRecords(DigitsDecoder())
    expected = expected_outputs(source, windows=[index * 10 for index in range(12)])
    assert_that(both_outputs(instances, letters, window=True), equal_to(expected))
    result = pipeline.run()
    result.wait_until_finish()
    assert len(expected) == 48 and sum(row[0] == "letter" for row in expected) == 12
    counts = metrics.read_counts(result)
    assert counts.records_read == 48
    assert (counts.predictions, counts.dead_letters) == (0, 0)  # those belong to later steps


def test_a_single_batch_leaves_from_finish_bundle_and_is_not_lost():
    """Output lags one element behind: the last (here the only) batch can only leave in finish_bundle."""
    source = batches(1, per_batch=5, bad_every=5)
    with test_pipeline.TestPipeline() as pipeline:
        instances, letters = pipeline | beam.Create(source) | DecodeRecords(DigitsDecoder())
        assert_that(
            both_outputs(instances, letters),
            equal_to(
                [("instance", "f0.txt", key, f"f0.txt:{key + 1}") for key in range(4)]
                + [("letter", "f0.txt", b"bad", "f0.txt:5", "non_numeric_value")]
            ),
        )


def test_a_batch_with_no_instances_gives_only_dead_letters_and_decoding_runs_in_the_parse_thread():
    """Decoding runs one batch ahead in its own thread, so that it overlaps the model's work downstream."""
    source = [RecordBatch("empty.txt", 1, [b"x", b"y"]), RecordBatch("ok.txt", 1, [b"1", b"2"])]
    with test_pipeline.TestPipeline() as pipeline:
        instances, letters = pipeline | beam.Create(source) | DecodeRecords(DigitsDecoder())
        threads = instances | beam.FlatMap(
            lambda batch: [("thread", name.split("_")[0]) for name in batch.features["thread"]]
        )
        assert_that(
            (both_outputs(instances, letters), threads) | "All" >> beam.Flatten(),
            equal_to(
                [
                    ("instance", "ok.txt", 1, "ok.txt:1"),
                    ("instance", "ok.txt", 2, "ok.txt:2"),
                    ("letter", "empty.txt", b"x", "empty.txt:1", Reason.NON_NUMERIC),
                    ("letter", "empty.txt", b"y", "empty.txt:2", Reason.NON_NUMERIC),
                    ("thread", "parse"),
                    ("thread", "parse"),
                ]
            ),
        )


def test_a_decoder_error_fails_the_job_with_its_message():
    """An unexpected error in the parse thread must surface, not vanish with its Future."""
    with pytest.raises(Exception, match=r"decoder broke on f0\.txt"), test_pipeline.TestPipeline() as pipeline:
        pipeline | beam.Create(batches(1)) | DecodeRecords(FailingDecoder())


def test_the_sample_format_decodes_through_the_step():
    """The real key_values decoder behind the step: good lines become instances, a short line a dead letter."""
    feeding = Feeding((TensorSpec("image", "float32", (2,)),), "key", KEY_INT)
    source = [RecordBatch("in.txt", 1, [b"1:0.5,0.25", b"2:1", b"3:0,1"]), RecordBatch("in.txt", 4, [b"4:1,1"])]
    with test_pipeline.TestPipeline() as pipeline:
        instances, letters = pipeline | beam.Create(source) | DecodeRecords(decoder_for("key_values", feeding))
        rows = instances | beam.FlatMap(
            lambda batch: [
                (int(key), image.tolist()) for key, image in zip(batch.keys, batch.features["image"], strict=True)
            ]
        )
        assert_that(rows, equal_to([(1, [0.5, 0.25]), (3, [0.0, 1.0]), (4, [1.0, 1.0])]))
        described = letters | beam.Map(lambda letter: (letter.position, letter.reason, letter.payload))
        assert_that(described, equal_to([("in.txt:2", Reason.WRONG_VALUE_COUNT, b"2:1")]), label="letters")


def test_a_udfs_drops_and_splits_are_counted_so_that_every_record_read_is_accounted_for():
    """Through a real UDF: one record dropped, one split in three; the counters say so beside records_read."""
    source = "def f(record):\n    return None if record['key'] == 2 else [record] * record['key']\n"
    feeding = Feeding((TensorSpec("x", "float32", ()),), "key", KEY_INT)
    records = [b'{"key": 1, "x": 1}', b'{"key": 2, "x": 2}', b'{"key": 3, "x": 3}']
    pipeline = test_pipeline.TestPipeline()
    decoder = decoder_for("jsonl", feeding, UdfCode("u.py", source, before="f"))
    instances, _ = pipeline | beam.Create([RecordBatch("in.jsonl", 1, records)]) | DecodeRecords(decoder)
    assert_that(instances | beam.FlatMap(lambda batch: batch.keys.tolist()), equal_to([1, 3, 3, 3]))
    result = pipeline.run()
    result.wait_until_finish()
    counts = metrics.read_counts(result)
    assert (counts.records_read, counts.udf_dropped, counts.udf_added) == (3, 1, 2)
