"""A version's health: the failure share over recent records, the batch limit that grows back, the log's pace."""

from __future__ import annotations

from pipeline.model.health import BROKEN_AFTER, GROW_AFTER, LOG_EVERY_S, RECENT_RECORDS, ModelHealth


def test_the_failure_share_is_judged_only_once_enough_records_failed_and_over_recent_ones():
    health = ModelHealth()
    for _ in range(BROKEN_AFTER - 1):
        health.record_failure_alone()
    assert health.failure_share() is None
    health.record_failure_alone()
    assert health.failure_share() == 1.0
    health.record_success(RECENT_RECORDS // 2)
    assert health.failure_share() == BROKEN_AFTER / (BROKEN_AFTER + RECENT_RECORDS // 2)
    health.record_success(RECENT_RECORDS * 5)  # a large clean call fills the window alone: no failure is recent
    assert health.failure_share() == 0.0


def test_a_small_share_is_judged_once_the_window_is_full_even_with_fewer_than_broken_after_failures():
    health = ModelHealth()
    for index in range(RECENT_RECORDS):
        health.record_failure_alone() if index % 20 == 0 else health.record_success(1)
    assert health.failure_share() == 0.05  # 50 failures: too few alone, but the window is full


def test_old_outcomes_leave_the_window():
    health = ModelHealth()
    for _ in range(RECENT_RECORDS):
        health.record_success(1)
    for _ in range(RECENT_RECORDS):
        health.record_failure_alone()
    assert health.failure_share() == 1.0


def test_a_batch_limit_is_announced_once_and_grows_back_more_slowly_after_each_failed_growth():
    health = ModelHealth()
    assert health.learn_batch_limit(32) == 32
    assert health.learn_batch_limit(32) is None
    for _ in range(GROW_AFTER):
        health.record_success(32)
    assert health.batch_limit == 64
    assert health.learn_batch_limit(32) is None  # said before
    for _ in range(GROW_AFTER):
        health.record_success(32)
    assert health.batch_limit == 32  # twice the patience now
    for _ in range(GROW_AFTER):
        health.record_success(32)
    assert health.batch_limit == 64


def test_the_log_is_told_at_most_once_a_minute():
    health = ModelHealth()
    assert health.time_to_log(now=1000.0)
    assert not health.time_to_log(now=1000.0 + LOG_EVERY_S - 1)
    assert health.time_to_log(now=1000.0 + LOG_EVERY_S)
