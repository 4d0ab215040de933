"""The summary a local run prints: counts, timings and where the results are."""

from __future__ import annotations

from pipeline.config import OUTPUT_SUFFIXES, TEXT_SUFFIX, IoKind, JobConfig
from pipeline.data.dead_letters import DAMAGE_REASONS
from pipeline.job.metrics import RunCounts
from pipeline.job.replace import SHARDS_REMOVED, TABLES_EMPTIED, TEMP_FOLDERS_REMOVED
from pipeline.job.report import report_location
from pipeline.job.statistics import stats_path


def _location(kind: IoKind, where: str, suffix: str = TEXT_SUFFIX) -> str:
    if kind is IoKind.BIGQUERY:
        return f"BigQuery table {where}"
    if kind is IoKind.PUBSUB:
        return f"Pub/Sub topic {where}"
    return f"{where}-*{suffix}"


def _replaced(replaced: dict[str, int]) -> str | None:
    """What the last step did to the earlier outputs, beyond writing over them; None if nothing."""
    parts = [
        f"{count:,} {what}"
        for what, count in (
            ("earlier shard(s) removed", replaced.get(SHARDS_REMOVED, 0)),
            ("stale temp folder(s) removed", replaced.get(TEMP_FOLDERS_REMOVED, 0)),
            ("table(s) that got no rows emptied", replaced.get(TABLES_EMPTIED, 0)),
        )
        if count
    ]
    return f"  earlier output       {'; '.join(parts)}" if parts else None


def _statistics_at(config: JobConfig) -> list[str]:
    if config.statistics is None:
        return []
    location = config.statistics.location
    stats = location + "-stats-*.json" if config.streaming else stats_path(location)
    return [f"  statistics at        {stats}", f"  report at            {report_location(stats)}"]


def format_summary(config: JobConfig, counts: RunCounts, started_unix_s: float, finished_unix_s: float) -> str:
    elapsed = finished_unix_s - started_unix_s
    if config.statistics is not None and config.statistics.only:  # no model call: records read, and where
        return "\n".join(
            [
                f"Statistics of the input computed in {elapsed:.1f} s (no predictions)",
                f"  records read         {counts.records_read:>10,}",
                *_statistics_at(config),
            ]
        )
    lines = [
        f"Streaming prediction stopped after {elapsed:.1f} s"
        if config.streaming
        else f"Batch prediction finished in {elapsed:.1f} s",
        f"  records read         {counts.records_read:>10,}",
        f"  predictions          {counts.predictions:>10,}",
        f"  dead letters         {counts.dead_letters:>10,}",
    ]
    for reason, count in sorted(counts.dead_letters_by_reason.items()):
        lines.append(f"    {reason:<18} {count:>10,}")
    if counts.udf_dropped or counts.udf_added:  # what a UDF before the model dropped, or added by splitting
        lines.append(f"  dropped by the UDF   {counts.udf_dropped:>10,}")
        lines.append(f"  added by the UDF     {counts.udf_added:>10,} (records split in several)")
    version = f", version {config.model_version}" if config.model_version is not None else ""
    lines.append(f"  model loaded in      {config.model_load_s:>10.2f} s ({config.signature.format.value}{version})")
    lines.append(f"  model copies         {config.model_copies.describe()}")
    if counts.first_prediction_unix_ms is not None:
        first = counts.first_prediction_unix_ms / 1000 - started_unix_s
        lines.append(f"  first prediction     {first:>10.1f} s after start")
    lines.append(f"  throughput           {counts.records_read / max(elapsed, 1e-9):>10,.0f} records/s end to end")
    lines.append(
        f"  predictions at       {_location(config.sink, config.output, OUTPUT_SUFFIXES[config.output_format])}"
    )
    lines.append(f"  dead letters at      {_location(config.dead_letter_kind, config.dead_letter)}")
    lines.extend(_statistics_at(config))
    if replaced := _replaced(counts.replaced):
        lines.append(replaced)
    damaged = {reason: count for reason, count in counts.dead_letters_by_reason.items() if reason in DAMAGE_REASONS}
    if damaged:
        kinds = ", ".join(sorted(damaged))
        lines.append(
            f"  WARNING: damaged input ({kinds}): {sum(damaged.values()):,} file(s) or table read(s) were not read "
            "to the end; their dead letters say where"
        )
    if not counts.reconciles:
        lines.append("  WARNING: records read != predictions + dead letters (- dropped + added by a UDF)")
    return "\n".join(lines)
