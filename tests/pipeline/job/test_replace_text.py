"""A text output replaced by the job's last step: this run's shards moved into place, the earlier ones of
exactly this prefix removed, temp folders of runs that are over removed, and no run able to destroy another's."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from pipeline.job.replace_text import (
    TEMP_IDLE_S,
    new_run_id,
    replace_text_outputs,
    run_started,
    staging_prefix,
    stale_shards,
    stale_temp_folders,
    survey,
)

HOUR = 3600.0


def uuid1_at(unix_s: float, node: int = 0x1234) -> str:
    """A version-1 UUID of the time `unix_s`, as Beam and the job name their folders."""
    ticks = int(unix_s * 1e7) + 0x01B21DD213814000
    fields = (ticks & 0xFFFFFFFF, (ticks >> 32) & 0xFFFF, ((ticks >> 48) & 0x0FFF) | 0x1000, 0x80, 0, node)
    return uuid.UUID(fields=fields).hex


def write(path: Path, text: str, modified: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if modified is not None:
        os.utime(path, (modified, modified))
    return path


def stage(prefix: Path, run_id: str, count: int, text: str, modified: float | None = None) -> list[str]:
    """What a run's write leaves in its staging folder: `count` shards, as Beam's finalize names them."""
    staged = Path(staging_prefix(str(prefix), run_id))
    return [
        str(write(staged.parent / f"{staged.name}-{index:05d}-of-{count:05d}.jsonl", f"{text} {index}\n", modified))
        for index in range(count)
    ]


def names(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def test_a_run_id_says_when_the_run_began_and_other_names_say_nothing():
    before = time.time()
    started = run_started(new_run_id())
    assert started is not None and before - 1 <= started <= time.time() + 1
    assert run_started(uuid1_at(1_700_000_000.5)) == pytest.approx(1_700_000_000.5)
    assert run_started(uuid.uuid4().hex) is None
    assert run_started("not-hex") is None


def test_a_run_stages_its_shards_in_a_folder_named_as_beam_names_its_temp_folders(tmp_path):
    run_id = new_run_id()
    assert staging_prefix(str(tmp_path / "p"), run_id) == str(tmp_path / f"beam-temp-p-{run_id}" / "p")
    assert staging_prefix("gs://b/out/p", run_id) == f"gs://b/out/beam-temp-p-{run_id}/p"


def test_the_survey_sees_this_prefixs_shards_and_temp_folders_never_a_longer_prefixs(tmp_path):
    mine = [tmp_path / "p-00000-of-00002.jsonl", tmp_path / "p-00001-of-00002.jsonl"]
    temp = tmp_path / f"beam-temp-p-{new_run_id()}"
    nested = temp / f"beam-temp-p-{new_run_id()}" / "shard.jsonl"
    others = [
        tmp_path / "p_error_records-00000-of-00001.jsonl",  # the dead letters: another prefix
        tmp_path / "p-2024-00000-of-00001.jsonl",  # a longer prefix's
        tmp_path / f"beam-temp-p-2024-{new_run_id()}" / "in-flight.jsonl",  # its temp files
        tmp_path / "p-notes.txt",
        tmp_path / "p-00000-of-00002.jsonl.bak",
        tmp_path / "beam-temp-p-short" / "x.jsonl",  # not a Beam temp folder's name
    ]
    for path in [*mine, temp / "a.jsonl", nested, *others]:
        write(path, "x")
    found = survey(str(tmp_path / "p"))
    assert set(found.shards) == {str(path) for path in mine}
    assert set(found.temp_folders) == {str(temp)}
    seen = (temp, temp / "a.jsonl", nested.parent, nested)  # a local folder's own time counts, as its files'
    assert found.temp_folders[str(temp)] == {str(path): pytest.approx(os.path.getmtime(path)) for path in seen}


def test_a_shard_set_older_than_ours_is_stale_and_a_newer_one_is_another_runs_to_keep():
    shards = {
        "o/p-00000-of-00001.jsonl": 100.0,  # ours
        "o/p-00000-of-00003.jsonl": 50.0,  # an earlier run's three
        "o/p-00001-of-00003.jsonl": 60.0,
        "o/p-00002-of-00003.jsonl": 99.0,
        "o/p-00000-of-00002.jsonl": 120.0,  # a run that finished after ours
        "o/p-00001-of-00002.jsonl": 90.0,
    }
    assert stale_shards(shards, "p", our_count=1) == [f"o/p-0000{index}-of-00003.jsonl" for index in range(3)]
    assert stale_shards(shards, "p", our_count=7) == []  # ours gone: a later run removed them; judge nothing


def test_a_set_is_judged_whole_so_none_is_left_half_removed():
    """One shard of the other set newer than ours keeps the whole set: never a partial set beside ours."""
    shards = {"o/p-00000-of-00001.jsonl": 100.0, "o/p-00000-of-00002.jsonl": 10.0, "o/p-00001-of-00002.jsonl": 100.5}
    assert stale_shards(shards, "p", our_count=1) == []


def test_a_temp_folder_is_stale_only_if_created_before_this_run_and_idle_for_an_hour():
    now = 1_800_000_000.0
    run_id = uuid1_at(now - 600)  # this run began ten minutes ago
    killed = f"o/beam-temp-p-{uuid1_at(now - 5 * HOUR)}"
    live = f"o/beam-temp-p-{uuid1_at(now - 5 * HOUR, node=2)}"
    newer = f"o/beam-temp-p-{uuid1_at(now - 300)}"  # a run that began after this one
    ours = f"o/beam-temp-p-{run_id}"
    random_name = f"o/beam-temp-p-{uuid.uuid4().hex}"  # not a version-1 UUID: no time to judge by
    folders = {
        killed: {f"{killed}/a": now - 2 * HOUR},
        live: {f"{live}/a": now - 2 * HOUR, f"{live}/b": now - 60},
        newer: {f"{newer}/a": now - 2 * HOUR},
        ours: {f"{ours}/a": now - 2 * HOUR},
        random_name: {f"{random_name}/a": now - 9 * HOUR},
    }
    assert stale_temp_folders(folders, run_id, now) == [killed]
    assert TEMP_IDLE_S == HOUR


def test_the_folders_of_one_run_are_judged_together():
    """A live run's dead-letter folder may sit idle for hours while its predictions folder fills."""
    now = 1_800_000_000.0
    other = uuid1_at(now - 5 * HOUR)
    predictions, dead_letters = f"o/beam-temp-p-{other}", f"o/beam-temp-p_error_records-{other}"
    folders = {predictions: {f"{predictions}/a": now - 30}, dead_letters: {f"{dead_letters}/a": now - 4 * HOUR}}
    assert stale_temp_folders(folders, uuid1_at(now), now) == []
    folders[predictions] = {f"{predictions}/a": now - 2 * HOUR}
    assert stale_temp_folders(folders, uuid1_at(now), now) == sorted([predictions, dead_letters])


def test_the_last_step_moves_this_runs_shards_in_and_removes_what_earlier_runs_left(tmp_path):
    long_ago = time.time() - 3 * HOUR
    earlier = [write(tmp_path / f"p-0000{index}-of-00003.jsonl", "old\n", long_ago) for index in range(3)]
    same_name = write(tmp_path / "p-00000-of-00001.jsonl", "old, same name\n", long_ago)
    killed = tmp_path / f"beam-temp-p-{uuid1_at(long_ago)}"
    write(killed / "in-flight.jsonl", "x", long_ago)
    os.utime(killed, (long_ago, long_ago))  # a local folder's own time is when a file was last made in it
    killed_before_writing = tmp_path / f"beam-temp-p-{uuid1_at(long_ago, node=2)}"
    (killed_before_writing / "nested").mkdir(parents=True)
    for folder in (killed_before_writing / "nested", killed_before_writing):
        os.utime(folder, (long_ago, long_ago))
    just_made = tmp_path / f"beam-temp-p-{uuid1_at(time.time() - 60, node=3)}"  # a live run, no file yet
    just_made.mkdir()
    kept = {
        "p-2024-00000-of-00001.jsonl": "a longer prefix's\n",
        "p-notes.txt": "not a shard\n",
        f"beam-temp-p-2024-{uuid1_at(long_ago)}/x.jsonl": "a longer prefix's temp file\n",
        f"beam-temp-p-{uuid1_at(time.time() - 60)}/x.jsonl": "a run that is still writing\n",
    }
    for name, text in kept.items():
        write(tmp_path / name, text)
    run_id = new_run_id()
    written = stage(tmp_path / "p", run_id, 1, "new")
    dead_letters = stage(tmp_path / "p_error_records", run_id, 1, "")

    replaced = replace_text_outputs(
        {str(tmp_path / "p"): written, str(tmp_path / "p_error_records"): dead_letters}, run_id
    )

    assert (replaced.shards, replaced.temp_folders) == (3, 2)
    assert not any(path.exists() for path in [*earlier, killed, killed_before_writing])
    assert just_made.is_dir()
    assert same_name.read_text() == "new 0\n"
    assert (tmp_path / "p_error_records-00000-of-00001.jsonl").read_text() == " 0\n"
    assert names(tmp_path) == {"p-00000-of-00001.jsonl", "p_error_records-00000-of-00001.jsonl", *kept}
    assert all((tmp_path / name).read_text() == text for name, text in kept.items())

    again = replace_text_outputs(
        {str(tmp_path / "p"): written, str(tmp_path / "p_error_records"): dead_letters}, run_id
    )
    assert (again.shards, again.temp_folders) == (0, 0)  # a retried last step changes nothing
    assert same_name.read_text() == "new 0\n"


def test_two_runs_on_one_prefix_cannot_destroy_each_other(tmp_path):
    """Run A began first and wrote its two shards first; run B wrote three later. Whichever last step runs
    first, every set is either whole or wholly removed, and the newer set always survives."""
    prefix = tmp_path / "p"
    a, b = uuid1_at(time.time() - 120), uuid1_at(time.time() - 60, node=2)
    a_written = stage(prefix, a, 2, "a", modified=time.time() - 30)
    b_written = stage(prefix, b, 3, "b", modified=time.time() - 10)
    a_shards = {f"p-0000{index}-of-00002.jsonl" for index in range(2)}
    b_shards = {f"p-0000{index}-of-00003.jsonl" for index in range(3)}

    replace_text_outputs({str(prefix): b_written}, b)  # B finishes first: A's staging folder is live
    assert names(tmp_path) == b_shards | {str(Path(path).relative_to(tmp_path)) for path in a_written}
    replace_text_outputs({str(prefix): a_written}, a)  # A's shards are older than B's: both sets stay whole
    assert names(tmp_path) == a_shards | b_shards

    c = new_run_id()  # a rerun that finishes after both holds the prefix alone
    replace_text_outputs({str(prefix): stage(prefix, c, 1, "c")}, c)
    assert names(tmp_path) == {"p-00000-of-00001.jsonl"}


def test_without_a_shard_of_its_own_the_step_removes_no_shard(tmp_path, caplog):
    write(tmp_path / "p-00000-of-00003.jsonl", "old\n", time.time() - HOUR)
    run_id = new_run_id()
    assert replace_text_outputs({str(tmp_path / "p"): []}, run_id).shards == 0
    assert (tmp_path / "p-00000-of-00003.jsonl").exists()
    assert "no shard of this run found" in caplog.text


def test_a_run_whose_staged_shards_another_run_removed_fails_and_leaves_the_earlier_output(tmp_path):
    earlier = write(tmp_path / "p-00000-of-00001.jsonl", "earlier\n", time.time() - HOUR)
    run_id = new_run_id()
    written = stage(tmp_path / "p", run_id, 2, "new")
    for path in written:  # what another run's last step would do to a staging folder it took for dead
        Path(path).unlink()
    with pytest.raises(RuntimeError, match=r"2 shard\(s\) this run wrote are gone from its staging folder"):
        replace_text_outputs({str(tmp_path / "p"): written}, run_id)
    assert earlier.read_text() == "earlier\n"


def test_gs_prefixes_are_replaced_the_same_way(cloud_emulators):
    """On GCS a folder is a name prefix, a rename a copy: the same rules, through Beam's GCS filesystem."""
    from apache_beam.io.filesystems import FileSystems

    root = f"gs://{cloud_emulators.bucket}/replace-text-{new_run_id()}"

    def put(path: str, text: str) -> None:
        with FileSystems.create(path) as handle:
            handle.write(text.encode())

    killed = f"{root}/beam-temp-p-{uuid1_at(time.time() - 60)}"
    put(f"{root}/p-00000-of-00002.jsonl", "old\n")
    put(f"{root}/p-00001-of-00002.jsonl", "old\n")
    put(f"{killed}/nested/in-flight.jsonl", "x")
    put(f"{root}/p-2024-00000-of-00001.jsonl", "a longer prefix's\n")
    time.sleep(0.01)
    run_id = new_run_id()
    staged = staging_prefix(f"{root}/p", run_id)
    put(f"{staged}-00000-of-00001.jsonl", "new\n")
    put(f"{FileSystems.split(staged)[0]}/beam-temp-p-{new_run_id()}/leftover", "x")

    replaced = replace_text_outputs({f"{root}/p": [f"{staged}-00000-of-00001.jsonl"]}, run_id, now=time.time() + HOUR)

    assert (replaced.shards, replaced.temp_folders) == (2, 1)
    left = sorted(meta.path for meta in FileSystems.match([f"{root}/**"])[0].metadata_list)
    assert left == [f"{root}/p-00000-of-00001.jsonl", f"{root}/p-2024-00000-of-00001.jsonl"]
    with FileSystems.open(f"{root}/p-00000-of-00001.jsonl") as handle:
        assert handle.read() == b"new\n"


def test_the_shards_of_either_format_are_this_prefixs_and_none_of_a_longer_prefix(tmp_path):
    mine = [
        tmp_path / "p-00000-of-00001.jsonl",
        tmp_path / "p-00000-of-00002.parquet",
        tmp_path / "p-00001-of-00002.parquet",
    ]
    others = [
        tmp_path / "p-2024-00000-of-00001.parquet",  # a longer prefix's
        tmp_path / "p-00000-of-00001.parquet.crc",
        tmp_path / "p-00000-of-00001.avro",
    ]
    for path in [*mine, *others]:
        write(path, "x")
    assert set(survey(str(tmp_path / "p")).shards) == {str(path) for path in mine}


def test_a_set_is_its_count_and_format_so_an_older_set_of_the_same_count_in_the_other_format_is_stale():
    shards = {"o/p-00000-of-00001.parquet": 100.0, "o/p-00000-of-00001.jsonl": 50.0, "o/p-00000-of-00003.jsonl": 101.0}
    assert stale_shards(shards, "p", our_count=1, our_suffix=".parquet") == ["o/p-00000-of-00001.jsonl"]
    assert stale_shards(shards, "p", our_count=1, our_suffix=".jsonl") == []  # ours (jsonl) is the oldest


@pytest.mark.parametrize(("earlier", "ours"), [(".jsonl", ".parquet"), (".parquet", ".jsonl")])
def test_a_run_in_one_format_replaces_an_earlier_runs_shards_in_the_other(tmp_path, earlier, ours):
    long_ago = time.time() - 3 * HOUR
    for index in range(2):
        write(tmp_path / f"p-0000{index}-of-00002{earlier}", "old\n", long_ago)
    write(tmp_path / f"p-00000-of-00001{earlier}", "old, the same count\n", long_ago)
    write(tmp_path / "p_error_records-00000-of-00001.jsonl", "an earlier dead letter\n", long_ago)
    write(tmp_path / f"p-2024-00000-of-00001{earlier}", "a longer prefix's\n", long_ago)
    run_id = new_run_id()
    staged = Path(staging_prefix(str(tmp_path / "p"), run_id))
    written = [str(write(staged.parent / f"{staged.name}-00000-of-00001{ours}", "new\n"))]
    dead_letters = stage(tmp_path / "p_error_records", run_id, 1, "")

    replaced = replace_text_outputs(
        {str(tmp_path / "p"): written, str(tmp_path / "p_error_records"): dead_letters}, run_id
    )

    assert replaced.shards == 3
    assert names(tmp_path) == {
        f"p-00000-of-00001{ours}",
        "p_error_records-00000-of-00001.jsonl",
        f"p-2024-00000-of-00001{earlier}",
    }
    assert (tmp_path / f"p-00000-of-00001{ours}").read_text() == "new\n"
