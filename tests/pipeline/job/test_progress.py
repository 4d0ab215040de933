"""Live tallies of records done and bytes read: they add up, read back, reset, and lose nothing across threads."""

from __future__ import annotations

import threading

import pytest

from pipeline.job import progress
from pipeline.job.progress import TALLIES, _Tallies


@pytest.fixture
def global_tallies():
    """The process-wide tallies, zeroed before and after so that other tests neither see nor leave counts."""
    TALLIES.reset()
    yield TALLIES
    TALLIES.reset()


def test_new_tallies_start_at_zero():
    assert _Tallies().read() == (0, 0)


def test_adds_accumulate_records_and_bytes_separately():
    tallies = _Tallies()
    tallies.add(records=3)
    tallies.add(bytes_read=1000)
    tallies.add(records=2, bytes_read=24)
    tallies.add()
    assert tallies.read() == (5, 1024)


def test_reset_zeroes_both_and_counting_starts_again():
    tallies = _Tallies()
    tallies.add(records=7, bytes_read=70)
    tallies.reset()
    assert tallies.read() == (0, 0)
    tallies.add(records=1, bytes_read=2)
    assert tallies.read() == (1, 2)


def test_records_done_and_bytes_read_add_to_the_process_tallies(global_tallies):
    progress.records_done(10)
    progress.bytes_read(4096)
    progress.records_done(5)
    assert global_tallies.read() == (15, 4096)


def test_concurrent_adds_lose_no_count():
    """Decode threads and bundle threads add at once: every addition must land."""
    tallies = _Tallies()
    threads, adds = 8, 5_000
    start = threading.Barrier(threads)

    def work():
        start.wait()
        for _ in range(adds):
            tallies.add(records=1, bytes_read=3)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert tallies.read() == (threads * adds, threads * adds * 3)


@pytest.mark.parametrize(
    ("operation", "after"),
    [
        (lambda tallies: tallies.add(records=1, bytes_read=2), (6, 8)),
        (lambda tallies: tallies.reset(), (0, 0)),
        (lambda tallies: tallies.read(), None),
    ],
    ids=["add", "reset", "read"],
)
def test_every_operation_waits_for_the_lock(operation, after):
    """The GIL all but hides the race above, so check the mechanism: nothing runs while another holds the lock."""
    tallies = _Tallies()
    tallies.add(records=5, bytes_read=6)
    done = threading.Event()

    def run():
        operation(tallies)
        done.set()

    with tallies._lock:
        worker = threading.Thread(target=run)
        worker.start()
        assert not done.wait(0.1), "ran without taking the lock"
    assert done.wait(5)
    worker.join()
    if after is not None:
        assert tallies.read() == after


def test_a_udfs_drops_and_splits_are_counted_beside_the_records(global_tallies):
    progress.records_read(5)
    progress.udf_records(dropped=1, added=3)
    progress.predictions_done(7)
    counts = global_tallies.counts()
    assert (counts.records_read, counts.udf_dropped, counts.udf_added, counts.predictions) == (5, 1, 3, 7)
    assert counts.reconciles
