"""A text output's earlier shards replaced by this run's, once every write of the run has succeeded.

A batch job writes each text output into a staging folder beside it, `beam-temp-<name>-<run>` (the
form of Beam's own temp folders, so that a killed run's staging folder is cleared by the same rule),
and its last step moves the shards into place, removes the earlier shards and temp folders of exactly
this prefix, then its staging folder. Until then the earlier output stays exactly as it was. Shards are
`<prefix>-SSSSS-of-NNNNN` with the suffix of either output format (`.jsonl`, `.parquet`): a run replaces
the earlier run's shards whichever format they were written in.

Two runs on one prefix cannot destroy each other: a run removes only shard sets all older than its
own (so the run that finishes last holds the prefix, as the last of two WRITE_TRUNCATE loads holds a
table), and only temp folders created before it started that have not changed for TEMP_IDLE_S.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem

from pipeline.config import OUTPUT_SUFFIXES, TEXT_SUFFIX

# A temp folder whose files have not changed for this long belongs to a run that is over: a live run
# writes its predictions continuously (the folders of one run share its id and are judged together).
TEMP_IDLE_S = 3600.0
_UUID1_EPOCH = 0x01B21DD213814000  # 1582-10-15 to 1970-01-01, in the 100 ns ticks of a version-1 UUID
_LOGGER = logging.getLogger(__name__)
SHARD_SUFFIXES = tuple(OUTPUT_SUFFIXES.values())  # of the shards of a file output, in any format
_SUFFIX = "|".join(re.escape(suffix) for suffix in SHARD_SUFFIXES)


def new_run_id() -> str:
    """This run's id: a version-1 UUID, as in Beam's temp folder names, whose time says when the run began."""
    return uuid.uuid1().hex


def run_started(run_id: str) -> float | None:
    """When the run (or Beam write) that named a folder with `run_id` began, in Unix seconds; None if unknown."""
    try:
        value = uuid.UUID(hex=run_id)
    except ValueError:
        return None
    return (value.time - _UUID1_EPOCH) / 1e7 if value.version == 1 else None


def staging_prefix(prefix: str, run_id: str) -> str:
    """Where this run writes the shards of `prefix` until its last step moves them into place."""
    directory, name = FileSystems.split(prefix)
    return FileSystems.join(directory, f"beam-temp-{name}-{run_id}", name)


def _shard_set(path: str, name: str) -> tuple[int, str] | None:
    """(N, suffix) of `<name>-SSSSS-of-NNNNN.jsonl` (or `.parquet`), the base name of `path`: the set of shards
    it belongs to; None for any other file."""
    match = re.fullmatch(re.escape(name) + rf"-\d+-of-(\d+)({_SUFFIX})", FileSystems.split(path)[1])
    return (int(match.group(1)), match.group(2)) if match else None


@dataclass(frozen=True)
class Survey:
    """What lies under one prefix: its final-looking shards and the files of its temp folders, with their
    last-modified times (Unix seconds)."""

    shards: dict[str, float]
    temp_folders: dict[str, dict[str, float]]


def _local_folder_times(directory: str, temp: re.Pattern[str]) -> dict[str, dict[str, float]]:
    """Local temp folders, with the times of the folders in them: Beam makes a folder before any file in it, and
    a match sees files only, so a folder with none yet is judged by its own time."""
    found: dict[str, dict[str, float]] = {}
    for entry in os.scandir(directory) if os.path.isdir(directory) else ():
        if entry.is_dir() and temp.fullmatch(entry.name):
            with contextlib.suppress(OSError):  # removed meanwhile by its own run
                found[entry.path] = {root: os.path.getmtime(root) for root, _, _ in os.walk(entry.path)}
    return found


def survey(prefix: str) -> Survey:
    """This prefix's shards and temp folders, never a longer prefix's (`<prefix>-2024-...` is another output)."""
    directory, name = FileSystems.split(prefix)
    directory = directory or "."  # a bare local name: the working directory
    temp = re.compile(r"beam-temp-" + re.escape(name) + r"-[0-9a-f]{32}")
    shard_patterns = [f"{name}-*{suffix}" for suffix in SHARD_SUFFIXES]
    patterns = [FileSystems.join(directory, pattern) for pattern in (*shard_patterns, f"beam-temp-{name}-**")]
    *shard_results, temps = FileSystems.match(patterns)
    temps_found = temps.metadata_list
    shards = {
        meta.path: meta.last_updated_in_seconds
        for result in shard_results
        for meta in result.metadata_list
        if _shard_set(meta.path, name) is not None
    }
    folders: dict[str, dict[str, float]] = defaultdict(dict)
    if isinstance(FileSystems.get_filesystem(directory), LocalFileSystem):
        folders.update(_local_folder_times(directory, temp))
    for meta in temps_found:
        folder = meta.path[len(directory) :].lstrip("/").split("/", 1)[0]
        if temp.fullmatch(folder):
            folders[FileSystems.join(directory, folder)][meta.path] = meta.last_updated_in_seconds
    return Survey(shards, dict(folders))


def stale_shards(shards: Mapping[str, float], name: str, our_count: int, our_suffix: str = TEXT_SUFFIX) -> list[str]:
    """The shard sets to remove: every set (`-of-N` and a suffix, not ours) whose newest shard is older than this
    run's oldest. A newer set is another run's that finished after this one: it holds the prefix, not us."""
    sets: dict[tuple[int, str], list[str]] = defaultdict(list)
    for path in shards:
        found = _shard_set(path, name)
        if found is not None:
            sets[found].append(path)
    ours = (our_count, our_suffix)
    if ours not in sets:
        return []  # ours are gone: a run that finished later replaced them
    ours_since = min(shards[path] for path in sets[ours])
    stale = [paths for found, paths in sets.items() if found != ours and max(shards[p] for p in paths) < ours_since]
    return sorted(path for paths in stale for path in paths)


def stale_temp_folders(folders: Mapping[str, Mapping[str, float]], run_id: str, now: float) -> list[str]:
    """The temp folders of runs that are over: created before this run began (the UUID in a folder's name
    says when) and unchanged for TEMP_IDLE_S, judged by run, the folders sharing one id together."""
    started = run_started(run_id)
    by_run: dict[str, list[str]] = defaultdict(list)
    for folder in folders:
        by_run[folder[-32:]].append(folder)
    stale = []
    for other, members in by_run.items():
        created = run_started(other)
        newest = max((modified for folder in members for modified in folders[folder].values()), default=0.0)
        over = created is not None and started is not None and created < started and newest < now - TEMP_IDLE_S
        if over and other != run_id:
            stale.extend(members)
    return sorted(stale)


def _delete_files(paths: list[str]) -> None:
    """Deletes files; one already gone (another run's last step got there first) is no error."""
    try:
        if paths:
            FileSystems.delete(paths)
    except BeamIOError:
        if any(FileSystems.exists(path) for path in paths):
            raise


def _delete_folders(folders: list[str]) -> None:
    """Deletes folders with all they hold: a local one as a folder, a gs:// one as every object under it."""
    for folder in folders:
        if not FileSystems.get_filesystem(folder).has_dirs():
            FileSystems.delete([folder + "/"])
        elif FileSystems.exists(folder):
            _delete_files([folder])


def move_into_place(prefix: str, run_id: str, written: Iterable[str]) -> tuple[int, str] | None:
    """Moves this run's staged shards to `<prefix>-SSSSS-of-NNNNN.jsonl` (or `.parquet`; replacing the same
    names); returns (N, suffix), None if neither the write's result nor the staging folder names a shard
    (nothing to judge others by)."""
    staging = staging_prefix(prefix, run_id)
    directory, name = FileSystems.split(prefix)
    matched = FileSystems.match([f"{staging}-*{suffix}" for suffix in SHARD_SUFFIXES])
    staged = [meta.path for result in matched for meta in result.metadata_list]
    staged = [path for path in staged if _shard_set(path, name) is not None]
    if staged:  # none on a retry of this step after the move
        FileSystems.rename(staged, [FileSystems.join(directory, FileSystems.split(path)[1]) for path in staged])
    moved = {FileSystems.split(path)[1] for path in staged}
    lost = [
        path
        for path in written
        if _shard_set(path, name) is not None
        and FileSystems.split(path)[1] not in moved
        and not FileSystems.exists(FileSystems.join(directory, FileSystems.split(path)[1]))
    ]
    if lost:  # neither staged nor in place: another run removed this run's staging folder
        raise RuntimeError(
            f"{prefix}: {len(lost)} shard(s) this run wrote are gone from its staging folder before they were "
            f"moved into place (another run's last step removed it?); the earlier output is left as it was"
        )
    sets = {_shard_set(path, name) for path in [*staged, *written]} - {None}
    return sets.pop() if len(sets) == 1 else None


@dataclass(frozen=True)
class Replaced:
    """What the last step removed, for the counters and the log."""

    shards: int = 0
    temp_folders: int = 0


def replace_text_outputs(written: Mapping[str, list[str]], run_id: str, now: float | None = None) -> Replaced:
    """Moves this run's shards of each prefix (`written`: prefix -> the files its write reported) into place,
    then removes the earlier shards and temp folders of those prefixes, and this run's staging folders."""
    ours = {prefix: move_into_place(prefix, run_id, files) for prefix, files in written.items()}
    surveys = {prefix: survey(prefix) for prefix in written}
    shards = []
    for prefix, found in ours.items():
        if found is None:
            _LOGGER.warning("%s: no shard of this run found, so no earlier shard is removed", prefix)
            continue
        shards += stale_shards(surveys[prefix].shards, FileSystems.split(prefix)[1], *found)
    folders = {folder: files for found in surveys.values() for folder, files in found.temp_folders.items()}
    temp = stale_temp_folders(folders, run_id, time.time() if now is None else now)
    _delete_files(shards)
    _delete_folders([FileSystems.split(staging_prefix(prefix, run_id))[0] for prefix in written])
    _delete_folders(temp)
    _LOGGER.info(
        "%s: removed %d earlier shard(s) and %d stale temp folder(s)", ", ".join(written), len(shards), len(temp)
    )
    return Replaced(len(shards), len(temp))
