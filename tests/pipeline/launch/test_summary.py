"""The local run's summary and the counters it reads."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

from pipeline.config import JobConfig, StatisticsPlan
from pipeline.data.instances import KEY_INT, Feeding
from pipeline.data.rows import RowLayout
from pipeline.job.metrics import RunCounts
from pipeline.launch.summary import format_summary
from pipeline.model.files import ModelFormat
from pipeline.model.memory import ModelCopies
from pipeline.model.signatures import ModelSignature, TensorSpec

CONFIG = JobConfig(
    source="text",
    input="in.txt",
    query=None,
    sink="text",
    output="out/p",
    dead_letter="out/p_error_records",
    dead_letter_kind="text",
    model="m",
    batch_size=256,
    signature=ModelSignature(
        ModelFormat.SAVED_MODEL, (TensorSpec("image", "float32", (784,)),), (TensorSpec("scores", "float32", (10,)),)
    ),
    project=None,
    record_format="key_values",
    decoding="key_values",
    feeding=Feeding((TensorSpec("image", "float32", (784,)),), "key", KEY_INT),
    rows=RowLayout((TensorSpec("scores", "float32", (10,)),)),
    model_load_s=1.25,
)


def test_summary_reports_counts_timings_and_locations():
    counts = RunCounts(1000, 990, 10, {"bad_key": 4, "empty_record": 6}, first_prediction_unix_ms=102_500)
    text = format_summary(CONFIG, counts, started_unix_s=100.0, finished_unix_s=110.0)
    assert "Batch prediction finished in 10.0 s" in text
    assert "records read              1,000" in text
    assert "bad_key                     4" in text
    assert "first prediction            2.5 s after start" in text
    assert "throughput                  100 records/s end to end" in text
    assert "model loaded in            1.25 s (TF2 SavedModel)" in text
    assert "model copies         one per process (the default)" in text
    assert "out/p-*.jsonl" in text and "WARNING" not in text


def test_summary_says_how_many_model_copies_each_worker_keeps_and_why():
    config = replace(CONFIG, model_copies=ModelCopies(per_vm=True, reason="local run, --model_copies=per_vm"))
    text = format_summary(config, RunCounts(10, 10, 0), 0.0, 1.0)
    assert "  model copies         one per VM (local run, --model_copies=per_vm)\n" in text


def test_summary_warns_when_counts_do_not_reconcile():
    counts = RunCounts(1000, 990, 9)
    assert not counts.reconciles
    assert "WARNING: records read != predictions + dead letters" in format_summary(CONFIG, counts, 0.0, 1.0)


def test_summary_warns_of_damaged_input():
    counts = RunCounts(1000, 998, 2, {"truncated_input": 1, "bad_key": 1})
    text = format_summary(CONFIG, counts, 0.0, 1.0)
    assert "WARNING: damaged input (truncated_input): 1 file(s) or table read(s) were not read to the end" in text


def test_summary_says_what_the_last_step_removed_or_emptied_and_nothing_when_it_did_neither():
    counts = RunCounts(10, 10, 0, replaced={"earlier_shards_removed": 3, "tables_emptied": 1})
    lines = format_summary(CONFIG, counts, 0.0, 1.0).splitlines()
    assert "  earlier output       3 earlier shard(s) removed; 1 table(s) that got no rows emptied" in lines
    plain = format_summary(CONFIG, RunCounts(10, 10, 0, replaced={"earlier_shards_removed": 0}), 0.0, 1.0)
    assert plain.splitlines()[-1].startswith("  dead letters at") and "earlier output" not in plain


def test_summary_points_at_the_parquet_files_of_a_parquet_output_and_dead_letters_stay_json_lines():
    config = dataclasses.replace(CONFIG, output_format="parquet")
    text = format_summary(config, RunCounts(10, 10, 0), 0.0, 1.0)
    assert "predictions at       out/p-*.parquet" in text
    assert "dead letters at      out/p_error_records-*.jsonl" in text


def test_summary_says_what_a_udf_dropped_and_added_and_reconciles_with_them():
    counts = RunCounts(100, 97, 5, {"udf_error": 5}, udf_dropped=8, udf_added=10)
    text = format_summary(CONFIG, counts, 0.0, 1.0)
    assert "  dropped by the UDF            8" in text.splitlines()
    assert "  added by the UDF             10 (records split in several)" in text.splitlines()
    assert "WARNING" not in text
    assert "dropped by the UDF" not in format_summary(CONFIG, RunCounts(10, 10, 0), 0.0, 1.0)


def test_summary_says_where_the_report_is_beside_the_statistics():
    config = replace(CONFIG, statistics=StatisticsPlan(location="out/p"))
    lines = format_summary(config, RunCounts(10, 10, 0), 0.0, 1.0).splitlines()
    after_stats = lines[lines.index("  statistics at        out/p-stats.json") + 1]
    assert after_stats == "  report at            out/p-report.html"
    streaming = format_summary(replace(config, streaming=True), RunCounts(10, 10, 0), 0.0, 1.0)
    assert "  report at            out/p-report-*.html" in streaming.splitlines()
    assert "report at" not in format_summary(CONFIG, RunCounts(10, 10, 0), 0.0, 1.0)


def test_a_statistics_only_run_says_what_it_read_and_where_its_statistics_are_and_warns_of_nothing():
    config = replace(CONFIG, statistics=StatisticsPlan(location="out/train", only=True))
    text = format_summary(config, RunCounts(records_read=170), 0.0, 2.0)
    assert text.splitlines()[:3] == [
        "Statistics of the input computed in 2.0 s (no predictions)",
        "  records read                170",
        "  statistics at        out/train-stats.json",
    ]
    assert "WARNING" not in text and "predictions at" not in text
