"""Transient faults of GCS and BigQuery are ridden out: the template runs unchanged behind proxies that fail requests.

Each test runs `main.run` in this process (DirectRunner) with this process's real clients pointed at
fault-injecting proxies (tests/fault_proxy.py) in front of the session's emulators, by seeded plans:
429, 500 and 503 answers shaped like Google's, connections dropped before an answer, answers lost
after the emulator acted, and a Storage Read gRPC stream reset mid-read. A test also fails when its
proxies injected nothing (tests/fault_fixtures.py). What each injected, and whether the project's own
retry (pipeline.job.retries) had to act, is printed in the run's "transient faults" section.

Client back-off sleeps are compressed 20x while the proxies run (see `compress_backoff`): the
clients' retry decisions and schedules are their own, only the waits are shorter. Three answers the
clients' retries rely on are BigQuery's and GCS's, not the emulators' own, until tests/emulators.py
patches them in: a resent jobs.insert is refused as a duplicate (409), ReadRows resumes at the
offset asked for, and a resumable upload takes a resent chunk without its bytes twice.

One case is a strict xfail, a Beam bug the project does not work around: a lost answer to Beam's
own temp-dataset insert of a query read.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from apache_beam.io.filesystems import FileSystems

from main import run
from tests.conftest import SAMPLE_IMAGES, SAMPLE_MODEL, SAMPLES
from tests.emulators import CloudEmulators
from tests.fault_proxy import DROP, LOST, MIXED, FaultProxy, Request, Rule
from tests.outputs import read_json_lines

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(120)]  # a fault a client never notices must not hang

DATASET = "faults"
N_IMAGES = 10_000
PREFIX = "transient-faults"
# The 2017 sample's two queries, on this module's table.
SEED_QUERIES = [
    "SELECT * FROM {table} WHERE key < 10 ORDER BY key;",
    "SELECT COUNT(*) FROM {table} WHERE pred0 >= 0.9;",
]
JOBS = r"/bigquery/v2/projects/[^/]+/jobs$"


def body_has(*needles: bytes):
    """A rule predicate: the request body holds all of `needles` (a load, a dry run, a TRUNCATE...)."""
    return lambda request: all(needle in request.body for needle in needles)


def is_load(request: Request) -> bool:
    return b'"load"' in request.body


# --------------------------------------------------------------------------------------------
# Fixtures: inputs put straight into the emulators, never through a proxy
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emu(cloud_emulators: CloudEmulators) -> CloudEmulators:
    return cloud_emulators


@pytest.fixture(scope="module")
def bq(emu):
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset(DATASET, exists_ok=True)
    return client


@pytest.fixture(scope="module")
def image_lines() -> list[bytes]:
    with gzip.open(SAMPLE_IMAGES, "rb") as handle:
        return handle.read().splitlines()


def put(emu, name: str, data: bytes) -> str:
    emu.gcs.client().bucket(emu.bucket).blob(f"{PREFIX}/{name}").upload_from_string(data)
    return f"gs://{emu.bucket}/{PREFIX}/{name}"


@pytest.fixture(scope="module")
def images_uri(emu) -> str:
    return put(emu, "images.txt.gz", SAMPLE_IMAGES.read_bytes())


@pytest.fixture(scope="module")
def first_images_uri(emu, image_lines) -> str:
    """The first 2,000 images, gzipped: enough for every case but the 10,000-record one."""
    return put(emu, "first-images.txt.gz", gzip.compress(b"\n".join(image_lines[:2000]) + b"\n"))


@pytest.fixture(scope="module")
def few_images_uri(emu, image_lines) -> str:
    """The first 200 images: for the cases about one request, where the records only need to get through."""
    return put(emu, "few-images.txt.gz", gzip.compress(b"\n".join(image_lines[:200]) + b"\n"))


@pytest.fixture(scope="module")
def model_uri(emu) -> str:
    for path in SAMPLE_MODEL.rglob("*"):
        if path.is_file():
            put(emu, f"model/{path.relative_to(SAMPLE_MODEL)}", path.read_bytes())
    return f"gs://{emu.bucket}/{PREFIX}/model"


@pytest.fixture(scope="module")
def images_table(emu, bq, first_images_uri) -> str:
    """faults.images: the first 2,000 images, loaded as the seed's `bq load -F":"` does."""
    from google.cloud import bigquery

    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        field_delimiter=":",
        schema=[bigquery.SchemaField("key", "INTEGER"), bigquery.SchemaField("image", "STRING")],
        write_disposition="WRITE_TRUNCATE",
    )
    bq.load_table_from_uri(first_images_uri, f"{DATASET}.images", job_config=config).result()
    return f"{emu.project}:{DATASET}.images"


@pytest.fixture(scope="module")
def few_images_table(emu, bq, images_table) -> str:
    bq.query(f"CREATE OR REPLACE TABLE {DATASET}.few_images AS SELECT * FROM {DATASET}.images WHERE key < 200").result()
    return f"{emu.project}:{DATASET}.few_images"


def launch(emu, *args: str) -> None:
    assert run([*args, *emu.beam_options()]) == 0


def leftovers(emu, prefix: str) -> list[str]:
    """Temp files or folders Beam left (beam-temp-*) under a gs:// folder, and write probes."""
    names = [blob.name for blob in emu.gcs.client().list_blobs(emu.bucket, prefix=prefix)]
    return [name for name in names if "beam-temp" in name or ".write-probe-" in name]


def summary_counts(out: str) -> dict[str, int]:
    counts = {}
    for name in ("records read", "predictions", "dead letters"):
        match = re.search(rf"^  {name} +([\d,]+)$", out, re.M)
        assert match, f"no '{name}' line in the summary:\n{out}"
        counts[name] = int(match.group(1).replace(",", ""))
    assert "WARNING" not in out, out
    return counts


def rows(bq, sql: str) -> list[dict]:
    return [dict(row.items()) for row in bq.query(sql).result()]


def assert_each_key_once(keys: list, expected: range) -> None:
    assert len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicate key(s)"
    assert sorted(keys) == list(expected)


# --------------------------------------------------------------------------------------------
# The proxy itself
# --------------------------------------------------------------------------------------------


def test_the_proxy_forwards_chunked_bodies_loses_answers_and_fails_requests_as_google_does(emu):
    name = f"{PREFIX}/proxy/chunked.txt"
    upload = f"/upload/storage/v1/b/{emu.bucket}/o?uploadType=media&name={name.replace('/', '%2F')}"
    metadata = f"/storage/v1/b/{emu.bucket}/o/{name.replace('/', '%2F')}"
    rules = [
        Rule(kinds=(LOST,), method="POST", path=r"^/upload/", first=1),
        Rule(kinds=("503",), method="GET", path=r"^/storage/v1/b/[^/]+/o/", first=1),
        Rule(kinds=(DROP,), method="GET", path=r"^/storage/v1/b/[^/]+/o/", first=1),  # the next one
    ]
    with FaultProxy(emu.gcs.url, rules) as proxy:
        address = urlsplit(proxy.url)

        def send(method: str, target: str, body: Iterator[bytes] | None = None) -> tuple[int, bytes]:
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            try:
                headers = {"Content-Type": "text/plain"} if body is not None else {}
                connection.request(method, target, body=body, headers=headers, encode_chunked=body is not None)
                response = connection.getresponse()
                return response.status, response.read()
            finally:
                connection.close()

        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            send("POST", upload, iter([b"abc", b"def"]))  # forwarded and stored, the answer lost
        assert emu.gcs.client().bucket(emu.bucket).blob(name).download_as_bytes() == b"abcdef"
        status, body = send("POST", upload, iter([b"ghi", b"jkl"]))
        assert status == 200 and json.loads(body)["mediaLink"].startswith(proxy.url + "/download/")
        status, body = send("GET", metadata)
        assert (status, json.loads(body)["error"]["status"]) == (503, "UNAVAILABLE")
        assert json.loads(body)["error"]["code"] == 503 and json.loads(body)["error"]["errors"][0]["reason"]
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            send("GET", metadata)  # dropped, unanswered
        status, body = send("GET", metadata)
        assert status == 200 and json.loads(body)["size"] == "6"
    assert proxy.by_kind() == {"503": 1, DROP: 1, LOST: 1}
    stored = emu.gcs.client().bucket(emu.bucket).get_blob(name)
    assert stored.download_as_bytes() == b"ghijkl" and emu.gcs.url in stored.media_link  # not the proxy's


# --------------------------------------------------------------------------------------------
# (a) the storage JSON API at 20 %
# --------------------------------------------------------------------------------------------


def test_gcs_to_gcs_predicts_every_record_once_with_a_fifth_of_storage_requests_failing(
    emu, faulty_clouds, images_uri, model_uri, capfd
):
    output = f"gs://{emu.bucket}/{PREFIX}/a/predictions"
    capfd.readouterr()
    with faulty_clouds.through(gcs=[Rule(kinds=MIXED, share=0.2)]) as proxies:
        launch(emu, f"--input={images_uri}", f"--output={output}", f"--model={model_uri}")
    proxies.gcs.assert_injected(at_least=15)
    assert set(proxies.gcs.by_kind()) == set(MIXED)
    counts = summary_counts(capfd.readouterr().out)
    assert counts == {"records read": N_IMAGES, "predictions": N_IMAGES, "dead letters": 0}
    assert_each_key_once([row["key"] for row in read_json_lines(output + "-*.jsonl")], range(N_IMAGES))
    assert read_json_lines(output + "_error_records-*.jsonl") == []
    assert leftovers(emu, f"{PREFIX}/a/") == []


# --------------------------------------------------------------------------------------------
# (b) BigQuery's REST API at 50 %
# --------------------------------------------------------------------------------------------


def test_text_to_bigquery_writes_the_same_rows_with_half_of_bigquery_requests_failing(
    emu, bq, faulty_clouds, first_images_uri
):
    """The launch, the load and then the seed's queries all go through a proxy failing half of them."""
    from google.cloud import bigquery

    args = [f"--input={first_images_uri}", "--sink=bigquery", f"--model={SAMPLE_MODEL}"]
    launch(emu, *args, f"--output={DATASET}.predict_clean")
    clean, faulted = f"{DATASET}.predict_clean", f"{DATASET}.predict"
    queries = ["SELECT * FROM {table} ORDER BY key", *SEED_QUERIES]
    with faulty_clouds.through(bq=[Rule(kinds=MIXED, share=0.5)]) as proxies:
        launch(emu, *args, f"--output={faulted}")
        through_proxy = bigquery.Client()  # made here, so on the proxy
        answers = [rows(through_proxy, query.format(table=faulted)) for query in queries]
        schema = through_proxy.get_table(f"{emu.project}.{faulted}").schema
    proxies.bq.assert_injected(at_least=5)
    assert set(proxies.bq.by_kind()) == set(MIXED)
    expected = [rows(bq, query.format(table=clean)) for query in queries]
    assert len(expected[0]) == 2000
    assert answers == expected
    assert schema == bq.get_table(f"{emu.project}.{clean}").schema


# --------------------------------------------------------------------------------------------
# (c) the Storage Read API's stream cut mid-read
# --------------------------------------------------------------------------------------------


def test_a_table_read_stream_cut_mid_read_resumes_and_reads_every_row_once(emu, faulty_clouds, images_table, tmp_path):
    # 2,000 rows of ~4.6 KB in 10 streams of 200 rows, sent 100 rows (~460 KB) a message: a connection is
    # cut in its stream's second message, once the first message's 100 rows have been handed to the job.
    with faulty_clouds.through(grpc_cut_after=700_000) as proxies:
        launch(
            emu,
            "--source=bigquery",
            f"--input={images_table}",
            "--sink=text",
            f"--output={tmp_path / 'p'}",
            f"--model={SAMPLE_MODEL}",
        )
    proxies.grpc.assert_injected()
    assert proxies.grpc.bytes_after_cut > 0, "nothing was read after the cut: the stream was not resumed"
    predictions = read_json_lines(tmp_path / "p-*.jsonl")
    assert_each_key_once([row["key"] for row in predictions], range(2000))
    assert [path.read_text() for path in tmp_path.glob("p_error_records-*.jsonl")] == [""]


# --------------------------------------------------------------------------------------------
# (d) a load job whose answer is lost
# --------------------------------------------------------------------------------------------


def test_a_load_job_insert_whose_answer_is_lost_is_retried_without_loading_twice(
    emu, bq, faulty_clouds, few_images_uri
):
    lost_load = Rule(kinds=(LOST,), method="POST", path=JOBS, when=is_load, first=1, name="load jobs.insert")
    with faulty_clouds.through(bq=[lost_load]) as proxies:
        launch(
            emu,
            f"--input={few_images_uri}",
            "--sink=bigquery",
            f"--output={DATASET}.lost_load",
            f"--model={SAMPLE_MODEL}",
        )
    proxies.bq.assert_injected()
    assert lost_load.matched >= 2, "the load job's insert was not sent again"
    assert proxies.bq.answered("POST", JOBS, 409), "the resent insert was not refused as a duplicate job"
    keys = [row["key"] for row in rows(bq, f"SELECT key FROM {DATASET}.lost_load")]
    assert_each_key_once(keys, range(200))


@pytest.mark.xfail(
    strict=True,
    raises=RuntimeError,  # the 409 as Beam's runner re-raises a step's error; any other failure is a real one
    reason="Beam 2.77's BigQueryWrapper.get_or_create_dataset sends datasets.insert again (httplib2) when its "
    "answer is lost, and takes BigQuery's 409 'Already Exists' for its own temp dataset as a failure. A fix in the "
    "project would patch Beam's BigQueryWrapper in a stage that runs none of the template's code, or create a "
    "lasting dataset in the user's project; neither is worth it for a fault this rare",
)
def test_a_query_read_survives_a_lost_answer_to_its_temp_dataset_insert(emu, faulty_clouds, images_table, tmp_path):
    lost = Rule(kinds=(LOST,), method="POST", path=r"/bigquery/v2/projects/[^/]+/datasets$", first=1)
    with faulty_clouds.through(bq=[lost]) as proxies:
        try:
            launch(
                emu,
                "--source=bigquery",
                f"--query=SELECT key, image FROM {DATASET}.images WHERE key < 50",
                "--sink=text",
                f"--output={tmp_path / 'p'}",
                f"--model={SAMPLE_MODEL}",
            )
        finally:
            proxies.bq.assert_injected()  # the xfail is for the reason above, not for a fault never sent


# --------------------------------------------------------------------------------------------
# (e) the first request of each launch check
# --------------------------------------------------------------------------------------------


def first_fails(kind: str, method: str, path: str, name: str, when=None) -> Rule:
    return Rule(kinds=(kind,), method=method, path=path, when=when, first=1, name=name)


def assert_each_failed_once_then_retried(rules: list[Rule]) -> None:
    for rule in rules:
        assert rule.injected == 1, f"{rule.name}: no fault injected"
        assert rule.matched >= 2, f"{rule.name}: never sent again after its fault"


OBJECTS = r"^/storage/v1/b/[^/]+/o$"
OBJECT = r"^/storage/v1/b/[^/]+/o/.+"
DATASETS = r"/bigquery/v2/projects/[^/]+/datasets/[^/]+$"
TABLES = r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+$"
TABLE_DATA = r"/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/[^/]+/data$"


def test_the_first_request_of_each_launch_check_fails_once_and_the_launch_goes_on(
    emu, bq, faulty_clouds, few_images_uri, few_images_table
):
    """A bare 504 (a front end's HTML page) is what google-cloud-bigquery does not retry itself:
    the launch's BigQuery checks retry it (pipeline.job.retries); google-cloud-storage retries its own."""
    # 1. text on GCS to BigQuery: match, first records, datasets of both tables, the table an earlier run wrote.
    bq.query(f"CREATE OR REPLACE TABLE {DATASET}.launch_checks AS SELECT 1 AS key").result()
    gcs = [
        first_fails("504", "GET", OBJECT, "match"),  # a pattern with no wildcard is matched by a lookup
        first_fails(DROP, "GET", r"^/download/", "first records"),
    ]
    bigquery = [
        first_fails("504", "GET", DATASETS, "get_dataset"),
        first_fails("500", "GET", TABLES, "get_table of an output"),
    ]
    with faulty_clouds.through(gcs=gcs, bq=bigquery):
        launch(
            emu,
            f"--input={few_images_uri}",
            "--sink=bigquery",
            f"--output={DATASET}.launch_checks",
            f"--model={SAMPLE_MODEL}",
        )
    assert_each_failed_once_then_retried(gcs + bigquery)
    assert len(rows(bq, f"SELECT key FROM {DATASET}.launch_checks")) == 200

    # 2. a table to text on GCS: get_table, first row, write probe (create, upload, delete); then, in the
    # job's last step, the match of the earlier shards.
    output = f"gs://{emu.bucket}/{PREFIX}/e/predictions"
    put(emu, "e/predictions-00000-of-00009.jsonl", b"{}\n")  # a shard of an earlier run, removed at the end
    gcs = [
        first_fails(DROP, "POST", r"^/upload/", "probe create"),
        first_fails("504", "PUT", r"^/upload/", "probe upload"),
        first_fails("429", "POST", r"^/batch/storage/v1$", "probe delete"),
        first_fails(
            "500", "GET", OBJECTS, "match old shards", lambda request: f"{PREFIX}%2Fe%2Fpredictions-" in request.query
        ),
    ]
    bigquery = [
        first_fails("504", "GET", TABLES, "get_table"),
        first_fails("504", "GET", TABLE_DATA, "first row"),
    ]
    with faulty_clouds.through(gcs=gcs, bq=bigquery):
        launch(
            emu,
            "--source=bigquery",
            f"--input={few_images_table}",
            "--sink=text",
            f"--output={output}",
            f"--model={SAMPLE_MODEL}",
        )
    assert_each_failed_once_then_retried(gcs + bigquery)
    assert_each_key_once([row["key"] for row in read_json_lines(output + "-*.jsonl")], range(200))
    assert leftovers(emu, f"{PREFIX}/e/") == []

    # 3. a query: its dry run.
    dry_run = first_fails("504", "POST", JOBS, "dry-run query", body_has(b'"dryRun": true'))
    with faulty_clouds.through(bq=[dry_run]):
        launch(
            emu,
            "--source=bigquery",
            f"--query=SELECT key, image FROM {DATASET}.images WHERE key < 50",
            "--sink=text",
            f"--output={output}",
            f"--model={SAMPLE_MODEL}",
        )
    assert_each_failed_once_then_retried([dry_run])
    assert_each_key_once([row["key"] for row in read_json_lines(output + "-*.jsonl")], range(50))
    assert faulty_clouds.own_retries == 4  # get_dataset, get_table, first row, dry run: the bare 504s


def test_a_bare_504_on_the_truncate_of_an_earlier_runs_table_is_retried(emu, bq, faulty_clouds, few_images_uri):
    """The earlier run's dead letters, and none this time: the job's last step empties their table."""
    bq.query(f"CREATE OR REPLACE TABLE {DATASET}.truncated_error_records AS SELECT 'earlier' AS reason").result()
    truncate = first_fails("504", "POST", JOBS, "TRUNCATE", body_has(b"TRUNCATE TABLE"))
    with faulty_clouds.through(bq=[truncate]):
        launch(
            emu,
            f"--input={few_images_uri}",
            "--sink=bigquery",
            f"--output={DATASET}.truncated",
            f"--model={SAMPLE_MODEL}",
        )
    assert_each_failed_once_then_retried([truncate])
    assert faulty_clouds.own_retries == 1  # the TRUNCATE's bare 504
    assert rows(bq, f"SELECT COUNT(*) AS n FROM {DATASET}.truncated_error_records") == [{"n": 0}]


# --------------------------------------------------------------------------------------------
# (f) resumable uploads of a large output
# --------------------------------------------------------------------------------------------

UPLOAD_CHUNK = 16 * 1024 * 1024  # Beam's BeamBlobWriter sends 16 MiB chunks


def test_a_large_output_uploads_in_chunks_through_failing_chunk_requests(emu, faulty_clouds, tmp_path):
    """An output of ~40 MB (the penguins with a 10 KB included field each): three 16 MiB chunks."""
    penguins = [json.loads(line) for line in (SAMPLES / "penguins/penguins.jsonl").read_text().splitlines()]
    count = 4000
    records = []
    for key in range(count):
        record = dict(penguins[key % len(penguins)], key=key)
        record["note"] = f"{key:05d}" + "n" * 10_000
        records.append(json.dumps(record))
    (tmp_path / "penguins.jsonl").write_text("\n".join(records) + "\n")
    output = f"gs://{emu.bucket}/{PREFIX}/f/predictions"
    big = lambda request: len(request.body) >= UPLOAD_CHUNK  # noqa: E731
    chunks = Rule(kinds=(LOST, "503", DROP, "500", LOST, "429"), method="PUT", path=r"^/upload/", when=big, limit=6)
    with faulty_clouds.through(gcs=[chunks]) as proxies:
        launch(
            emu,
            f"--input={tmp_path / 'penguins.jsonl'}",
            f"--output={output}",
            f"--model={SAMPLES / 'penguins/model'}",
            "--included_fields=note",
        )
    proxies.gcs.assert_injected(at_least=2)
    shards = FileSystems.match([output + "-*.jsonl"])[0].metadata_list
    assert max(shard.size_in_bytes for shard in shards) > 2 * UPLOAD_CHUNK, "no output needed several chunks"
    predictions = read_json_lines(output + "-*.jsonl")
    assert_each_key_once([row["key"] for row in predictions], range(count))
    assert all(row["note"] == f"{row['key']:05d}" + "n" * 10_000 for row in predictions)
    assert leftovers(emu, f"{PREFIX}/f/") == []


# --------------------------------------------------------------------------------------------
# (g) the finalize step's copies and deletes
# --------------------------------------------------------------------------------------------


def test_the_finalize_copies_and_deletes_of_text_outputs_survive_faults(emu, faulty_clouds, first_images_uri):
    output = f"gs://{emu.bucket}/{PREFIX}/g/predictions"
    batches = Rule(kinds=("503", LOST, DROP, "429", "500"), method="POST", path=r"^/batch/storage/v1$", first=8)
    with faulty_clouds.through(gcs=[batches]) as proxies:
        launch(emu, f"--input={first_images_uri}", f"--output={output}", f"--model={SAMPLE_MODEL}")
    proxies.gcs.assert_injected(at_least=3)
    assert_each_key_once([row["key"] for row in read_json_lines(output + "-*.jsonl")], range(2000))
    assert read_json_lines(output + "_error_records-*.jsonl") == []
    assert leftovers(emu, f"{PREFIX}/g/") == []
