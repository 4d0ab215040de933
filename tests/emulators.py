"""Pytest fixtures: local GCS and BigQuery emulators for Beam pipelines, no mocks of cloud clients.

Two real servers are started once per test session, as subprocesses on free 127.0.0.1 ports,
and stopped (SIGTERM, then SIGKILL) at the end of the session:

* GCS: ``gcp-storage-emulator`` (pure Python, PyPI), disk-backed so that BigQuery load jobs can
  read what Beam wrote to ``gs://``. It implements the JSON API *batch* endpoint, which Beam's
  ``WriteToText`` finalize step (copy + delete of the temp shards) needs; fake-gcs-server does not
  (``ValueError: Bad response: not multi-part`` in ``FinalizeWrite``). Patched in its own process
  (``_GCS_SHIM``) to take a resumable upload's resent chunk as GCS does.
* BigQuery: ``bqemulator`` (DuckDB, REST + Storage Read/Write gRPC), launched through a tiny shim
  (``_BQ_SHIM``) that runs *in the emulator's own process* and makes its mandatory
  ``INSTALL/LOAD spatial`` best-effort, so it starts with no network. Its ``gs://`` URIs resolve
  under ``BQEMU_GCS_LOCAL_ROOT``, which is pointed at the GCS emulator's object directory.

The ``cloud_emulators`` fixture then points the *real* client libraries of the test process at
them, for the whole session, and undoes it all at teardown:

* env ``STORAGE_EMULATOR_HOST`` (google-cloud-storage, hence Beam's GcsIO / FileSystems),
  ``BIGQUERY_EMULATOR_HOST`` (google-cloud-bigquery, which Beam also uses), ``GOOGLE_CLOUD_PROJECT``;
* ``google.auth.default`` -> anonymous credentials (no ADC here; Beam otherwise retries ADC for
  ~20 s per pipeline and google-cloud-bigquery raises ``DefaultCredentialsError``), and Beam's
  process-wide credential cache is reset;
* Beam's apitools BigQuery client ``BigqueryV2.BASE_URL`` -> the emulator's REST URL;
* Beam's ``bq_storage.BigQueryReadClient`` -> a subclass on an insecure gRPC channel;
* Beam's apitools ``datasets.list`` -> filtered by the ``labels.k:v`` filter client-side, since
  bqemulator ignores it and Beam's DIRECT_READ clean-up deletes *every* dataset that list returns;
* Beam's DirectRunner -> never PrismRunner (a GitHub download, then a separate job server), so it
  falls back to the in-process FnApiRunner, where all of the above applies;
* no HTTP(S) proxy for the session (Beam's httplib2 ignores ``no_proxy``).

Product code needs no change and no knowledge of any of this, as long as pipelines run on the
DirectRunner in this process (``direct_running_mode=in_memory``, the default).

Use: ``pytest_plugins = ["tests.emulators"]`` in tests/conftest.py, then request ``cloud_emulators``
(a :class:`CloudEmulators`: ``.gcs``, ``.bq``, ``.project``, ``.bucket``, ``.beam_options()``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tools import require_tool

PROJECT = "test-project"
BUCKET = "bucket"
STARTUP_TIMEOUT_S = float(os.environ.get("EMULATOR_STARTUP_TIMEOUT", "60"))
_PYTHON = sys.executable

# Runs inside the bqemulator process (`python -c _BQ_SHIM start ...`); nothing here touches the test
# process. Six patches of bqemulator 1.4.0, each undoable with an env var for comparison:
#
# 1. Offline start (always). bqemulator insists on `INSTALL spatial; LOAD spatial` at boot (GEOGRAPHY),
#    which downloads from extensions.duckdb.org: offline that aborts start-up ("Failed to download
#    extension spatial"; where the network silently drops packets it would hang instead). Made
#    best-effort: a cached extension still loads; DuckDB's auto-install of any other extension is
#    switched off so nothing reaches for the network later. Only GEOGRAPHY queries fail.
#    BQEMU_ENABLE_FORMAT_EXTENSIONS=false (set by the launcher) skips the best-effort `INSTALL avro`.
# 2. CSV load jobs (BQEMU_SHIM_CSV=0 to disable). The emulator runs `COPY t FROM f (FORMAT CSV, HEADER)`
#    whatever the job says: fieldDelimiter is ignored (DuckDB sniffs among , | ; TAB, so a ':' file
#    fails) and the first line is always dropped as a header, even with skipLeadingRows=0. Patched to
#    honour fieldDelimiter, skipLeadingRows and quote, as BigQuery (and `bq load -F`) does, and to
#    detect gzip by content (a local file `bq load` uploads is staged without its .gz name).
# 3. Query jobs with a destinationTable (BQEMU_SHIM_QUERY_DESTINATION=0 to disable). The emulator
#    keeps the result only in the job (WRITE_APPEND aside), so the table Beam's DIRECT_READ of a
#    `query=` reads next never exists (404 on tables.get of beam_temp_table_...). Patched: after a
#    successful SELECT with WRITE_TRUNCATE/WRITE_EMPTY/unset disposition the result is materialised
#    with `CREATE OR REPLACE TABLE dest AS <query>`, which also registers it in the catalog.
# 4. Row counts after DML (BQEMU_SHIM_DML_ROW_COUNT=0 to disable). The emulator refreshes a table's
#    numRows after a load job but not after DELETE/UPDATE/INSERT/MERGE, so tables.get keeps the old
#    count, where BigQuery reports the new one (the template compares the rows it reads with it).
# 5. Job ids are unique (BQEMU_SHIM_JOB_IDS=0 to disable). The emulator runs a job again when jobs.insert
#    names an id it already ran; BigQuery refuses it (409 duplicate, "Already Exists: Job p:US.id"), which
#    is what makes a client's retry of an insert whose answer was lost safe (no second load of the rows).
# 6. ReadRows resumes at an offset (BQEMU_SHIM_READ_ROWS=0 to disable). The emulator ignores
#    ReadRowsRequest.offset, so a client resuming a cut stream would get its first rows again; and it
#    sends up to 65,536 rows per message, where BigQuery's messages are a few MB at most. Patched: a read
#    starts at the requested offset, and BQEMU_READ_ROWS_PER_MESSAGE (default 100) rows go per message.
_BQ_SHIM = r"""
import os, sys
from bqemulator.storage import engine as _engine

def _load_spatial_best_effort(self):
    conn = self._connection
    conn.execute("SET autoinstall_known_extensions = false")
    try:
        conn.execute("LOAD spatial")
    except Exception as exc:
        print("bqemulator shim: no DuckDB spatial extension, GEOGRAPHY disabled:", str(exc).splitlines()[0],
              file=sys.stderr)

_engine.DuckDBEngine._load_spatial = _load_spatial_best_effort

if os.environ.get("BQEMU_SHIM_CSV", "1") != "0":
    from bqemulator.jobs import executor as _executor
    _original_load = _executor._load_path_into_target

    def _sql_char(value):
        return "'" + value.replace("'", "''") + "'"

    def _load_path_into_target(path, job, ctx):
        cfg = job.raw_config
        delimiter = cfg.get("fieldDelimiter", ",")
        delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
        quote = cfg.get("quote", '"')
        if job.source_format != "CSV" or len(delimiter) != 1 or len(quote) > 1 or "\n" in delimiter + quote:
            return _original_load(path, job, ctx)
        skip = int(cfg.get("skipLeadingRows") or 0)
        with open(path, "rb") as handle:  # gzip by content, as BigQuery does (uploads are staged nameless)
            gzipped = handle.read(2) == b"\x1f\x8b"
        options = ["FORMAT CSV", "HEADER false", f"SKIP {skip}", f"DELIMITER {_sql_char(delimiter)}",
                   f"QUOTE {_sql_char(quote)}", f"ESCAPE {_sql_char(quote)}",
                   f"COMPRESSION {'gzip' if gzipped else 'none'}"]
        ctx.engine.execute(f"COPY {job.target_ref} FROM ? ({', '.join(options)})", [path])

    _executor._load_path_into_target = _load_path_into_target

if os.environ.get("BQEMU_SHIM_QUERY_DESTINATION", "1") != "0":
    from bqemulator.api.routes import jobs as _jobs
    _original_execute = _jobs._execute_query_or_failed_meta

    async def _execute_query_or_failed_meta(**kwargs):
        meta = await _original_execute(**kwargs)
        query_config, sql = kwargs["query_config"], kwargs["bq_sql"]
        dest = query_config.get("destinationTable") or {}
        disposition = (query_config.get("writeDisposition") or "WRITE_EMPTY").upper()
        is_select = sql.lstrip().lstrip("(").lstrip()[:6].upper() in ("SELECT", "WITH")
        if (getattr(meta, "error_result", None) is None and dest.get("datasetId") and dest.get("tableId")
                and disposition in ("WRITE_TRUNCATE", "WRITE_EMPTY") and is_select):
            project = dest.get("projectId") or kwargs["project_id"]
            table = f"`{project}.{dest['datasetId']}.{dest['tableId']}`"
            await _jobs.execute_query_job(project, kwargs["job_id"] + "_destination",
                                          f"CREATE OR REPLACE TABLE {table} AS {sql}", kwargs["query_params"],
                                          kwargs["ctx"], caller=kwargs["caller"])
        return meta

    _jobs._execute_query_or_failed_meta = _execute_query_or_failed_meta

if os.environ.get("BQEMU_SHIM_DML_ROW_COUNT", "1") != "0":
    import re
    from bqemulator.api.routes import jobs as _dml_jobs
    from bqemulator.storage.sql_identifiers import quoted_table_ref

    _DML_TARGET = re.compile(
        r"^\s*(?:DELETE\s+(?:FROM\s+)?|UPDATE\s+|INSERT\s+(?:INTO\s+)?|MERGE\s+(?:INTO\s+)?)"
        r"`?([A-Za-z0-9_.:-]+)`?",
        re.I,
    )
    _query_without_dml_count = _dml_jobs._execute_query_or_failed_meta

    async def _execute_query_refreshing_row_count(**kwargs):
        meta = await _query_without_dml_count(**kwargs)
        match = _DML_TARGET.match(kwargs["bq_sql"])
        if getattr(meta, "error_result", None) is None and match:
            parts = match.group(1).replace(":", ".").split(".")
            parts = [kwargs["project_id"], *parts] if len(parts) == 2 else parts
            ctx = kwargs["ctx"]
            table = ctx.catalog.get_table(*parts) if len(parts) == 3 else None
            if table is not None:
                count = ctx.engine.execute(f"SELECT COUNT(*) FROM {quoted_table_ref(*parts)}").fetchone()[0]
                ctx.catalog.update_table(table.model_copy(update={"num_rows": count}))
        return meta

    _dml_jobs._execute_query_or_failed_meta = _execute_query_refreshing_row_count

if os.environ.get("BQEMU_SHIM_JOB_IDS", "1") != "0":
    from bqemulator.api.routes import jobs as _id_jobs
    from bqemulator.domain.errors import AlreadyExistsError, ErrorDetail

    def _refusing_duplicates(run_job, is_dry_run=lambda args, kwargs: False):
        async def run_unless_known(*args, **kwargs):
            project_id, job_id = args[0], args[1]
            ctx = kwargs["ctx"] if "ctx" in kwargs else args[3]
            if not is_dry_run(args, kwargs) and ctx.catalog.get_job(project_id, job_id) is not None:
                message = f"Already Exists: Job {project_id}:US.{job_id}"
                raise AlreadyExistsError(message, details=[ErrorDetail(reason="duplicate", message=message)])
            return await run_job(*args, **kwargs)
        return run_unless_known

    _id_jobs._handle_query_job = _refusing_duplicates(_id_jobs._handle_query_job, lambda a, k: k.get("dry_run"))
    _id_jobs._handle_load_job_with_async_envelope = _refusing_duplicates(_id_jobs._handle_load_job_with_async_envelope)
    _id_jobs.execute_copy_job = _refusing_duplicates(_id_jobs.execute_copy_job)
    _id_jobs.execute_extract_job = _refusing_duplicates(_id_jobs.execute_extract_job)

if os.environ.get("BQEMU_SHIM_READ_ROWS", "1") != "0":
    import threading
    import pyarrow as pa
    from bqemulator.grpc_api import read_servicer as _read
    from google.cloud.bigquery_storage_v1 import types as _storage_types

    _rows_per_message = int(os.environ.get("BQEMU_READ_ROWS_PER_MESSAGE", "100"))
    _read_offset = threading.local()
    _stream_data = _read.get_stream_data

    def _stream_data_from_offset(session_name, stream_name):
        table = _stream_data(session_name, stream_name)
        if table is None:
            return None
        table = table.slice(min(getattr(_read_offset, "value", 0), table.num_rows))
        return pa.Table.from_batches(table.to_batches(max_chunksize=_rows_per_message), schema=table.schema)

    _read.get_stream_data = _stream_data_from_offset
    _read_rows = _read.BigQueryReadHandler._handle_read_rows

    def _read_rows_from_offset(self, request_bytes, context):
        _read_offset.value = int(_storage_types.ReadRowsRequest.deserialize(request_bytes).offset)
        try:
            yield from _read_rows(self, request_bytes, context)
        finally:
            _read_offset.value = 0

    _read.BigQueryReadHandler._handle_read_rows = _read_rows_from_offset

from bqemulator.cli import main
main(sys.argv[1:], prog_name="bqemulator")
"""


# --------------------------------------------------------------------------------------------
# Process plumbing
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A port that was free a moment ago (the launchers retry if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Prepended to each emulator's `python -c` code: on Linux, ask for SIGTERM when the test process
# dies (PR_SET_PDEATHSIG), so a killed pytest leaves no emulator behind. Done in the child itself
# rather than with Popen(preexec_fn=...), which is unsafe once the parent runs threads (gRPC, Beam).
_PRELUDE = r"""
import os, signal, sys
if sys.platform.startswith("linux"):
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
        if os.getppid() != int(os.environ.get("EMULATOR_PARENT_PID", os.getppid())):
            sys.exit("emulator: parent already gone")
    except Exception:
        pass
"""
# Runs inside the gcp-storage-emulator process, before its server module builds its route table. One
# patch of gcp-storage-emulator, undoable with GCS_SHIM_RESUMABLE=0: a resumable upload's chunk that is
# sent again, because the answer to it was lost, is taken as GCS takes it. The emulator refuses a chunk
# that starts before the bytes it holds (400, "Invalid Content-Range start") and answers a chunk of a
# finished upload with 404; GCS ignores the bytes it already persisted (308 with their Range) and answers
# a finished upload with its object, which is what google-cloud-storage's retry of a chunk relies on.
_GCS_SHIM = r"""
if os.environ.get("GCS_SHIM_RESUMABLE", "1") != "0":
    from gcp_storage_emulator import storage as _gcs_storage
    from gcp_storage_emulator.handlers import objects as _gcs_objects

    _finished = {}  # upload_id -> the object it made
    _add_chunk = _gcs_storage.Storage.add_to_resumable_upload
    _create_file = _gcs_storage.Storage.create_file
    _upload_partial = _gcs_objects.upload_partial

    def _add_chunk_ignoring_persisted(self, file_id, content, total_size=None, expected_start=None):
        held = self.get_resumable_byte_count(file_id)
        if expected_start is not None and expected_start < held:
            skip = min(held - expected_start, len(content or b""))
            content, expected_start = (content or b"")[skip:], expected_start + skip
        return _add_chunk(self, file_id, content, total_size=total_size, expected_start=expected_start)

    def _create_file_noting_upload(self, bucket_name, file_name, content, file_obj, file_id=None):
        _create_file(self, bucket_name, file_name, content, file_obj, file_id)
        if file_id:
            _finished[file_id] = file_obj

    def _upload_partial_of_finished(request, response, storage, *args, **kwargs):
        upload_id = (request.query.get("upload_id") or [None])[0]
        if upload_id in _finished:
            response.json(_finished[upload_id])
            return None
        return _upload_partial(request, response, storage, *args, **kwargs)

    _gcs_storage.Storage.add_to_resumable_upload = _add_chunk_ignoring_persisted
    _gcs_storage.Storage.create_file = _create_file_noting_upload
    _gcs_objects.upload_partial = _upload_partial_of_finished
"""
_GCS_MAIN = (
    _PRELUDE
    + _GCS_SHIM
    + r"""
import runpy
runpy.run_module("gcp_storage_emulator", run_name="__main__", alter_sys=True)
"""
)


def _spawn(argv: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it; closed right after spawn
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log_path.parent,
        )
    finally:
        log.close()


def _stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace_s)


def _log_tail(path: Path, lines: int = 30, offset: int = 0) -> str:
    """The last `lines` lines of what was written to `path` after byte `offset`."""
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        handle.seek(offset)
        return "\n".join(handle.read().decode(errors="replace").splitlines()[-lines:])
    return ""


def _log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class EmulatorStartError(RuntimeError):
    pass


_BIND_ERRORS = ("address already in use", "failed to bind")


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _wait_ready(
    proc: subprocess.Popen,
    ready: Callable[[], bool],
    what: str,
    log: Path,
    timeout_s: float,
    ports: tuple[int, ...],
    log_offset: int = 0,
) -> None:
    deadline = time.monotonic() + timeout_s

    def _tail(path: Path, lines: int = 30) -> str:  # this attempt's part of the log only
        return _log_tail(path, lines, log_offset)

    def fail(reason: str):
        _stop(proc)
        # Lost a port to another process between free_port() and the emulator's bind: retryable.
        clash = any(e in _tail(log).lower() for e in _BIND_ERRORS) or any(map(_port_taken, ports))
        error = EmulatorStartError(f"{what} {reason}:\n{_tail(log)}")
        error.port_clash = clash
        raise error

    while True:
        if proc.poll() is not None:
            fail(f"exited with {proc.returncode} during start-up")
        with contextlib.suppress(Exception):
            if ready():
                return
        # gcp-storage-emulator does not exit when its port is taken (the server thread dies and the
        # process sleeps on): spot the bind error in its log rather than wait for the timeout.
        if any(e in _tail(log, 10).lower() for e in _BIND_ERRORS):
            fail("could not bind its port")
        if time.monotonic() > deadline:
            fail(f"not ready after {timeout_s:.0f}s")
        time.sleep(0.05)


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP(S)_PROXY


def _http_ok(url: str) -> bool:
    with _NO_PROXY_OPENER.open(url, timeout=1) as response:
        return 200 <= response.status < 300


def _start_with_retries(start: Callable[[], object], attempts: int = 3):
    """Retries a start-up that lost its port to another process in the meantime."""
    for attempt in range(attempts):
        try:
            return start()
        except EmulatorStartError as error:
            if attempt == attempts - 1 or not getattr(error, "port_clash", False):
                raise
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# GCS: gcp-storage-emulator
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class GcsEmulator:
    url: str  # http://127.0.0.1:PORT, the STORAGE_EMULATOR_HOST value (scheme included)
    data_dir: Path
    proc: subprocess.Popen
    log: Path
    startup_s: float

    @property
    def objects_root(self) -> Path:
        """Where object gs://B/NAME is stored as a plain file B/NAME (what BQEMU_GCS_LOCAL_ROOT wants)."""
        return self.data_dir / ".cloudstorage"

    def local_path(self, uri: str) -> Path:
        assert uri.startswith("gs://"), uri
        return self.objects_root / uri[len("gs://") :]

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )

    def create_bucket(self, name: str):
        """Creates a bucket with soft delete off (the emulator defaults to 7 days, like GCS, which would
        keep a copy of every temp file Beam deletes)."""
        bucket = self.client().create_bucket(name)
        bucket.soft_delete_policy.retention_duration_seconds = 0
        bucket.patch()
        return bucket


def start_gcs_emulator(data_dir: Path, timeout_s: float = STARTUP_TIMEOUT_S) -> GcsEmulator:
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}.log"

    def attempt() -> GcsEmulator:
        port = free_port()
        started, offset = time.monotonic(), _log_size(log)
        # -d is the storage root (objects under <root>/.cloudstorage/<bucket>/<name>, metadata in .meta);
        # -q keeps it from logging every request at DEBUG.
        argv = [
            _PYTHON,
            "-c",
            _GCS_MAIN,
            "-d",
            str(data_dir),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-q",
        ]
        proc = _spawn(argv, log, dict(os.environ, STORAGE_DIR=".cloudstorage", EMULATOR_PARENT_PID=str(os.getpid())))
        url = f"http://127.0.0.1:{port}"
        _wait_ready(
            proc, lambda: _http_ok(f"{url}/storage/v1/b"), "gcp-storage-emulator", log, timeout_s, (port,), offset
        )
        return GcsEmulator(url, data_dir, proc, log, time.monotonic() - started)

    return _start_with_retries(attempt)


# --------------------------------------------------------------------------------------------
# BigQuery: bqemulator
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class BigQueryEmulator:
    rest_url: str  # http://127.0.0.1:PORT, the BIGQUERY_EMULATOR_HOST value (scheme included)
    grpc_target: str  # 127.0.0.1:PORT, Storage Read/Write API, plaintext
    project: str
    proc: subprocess.Popen
    log: Path
    startup_s: float

    def client(self):
        """A google-cloud-bigquery client on the emulator (works without the session patches too)."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.rest_url),
        )

    def read_client_class(self):
        return _emulator_read_client_class(self.grpc_target)

    def bq_cli(self, config_dir: Path) -> tuple[list[str], dict[str, str]] | None:
        """argv prefix and env to run the Cloud SDK's `bq` CLI against the emulator, or None without it.

        `--api` points it here; `--discovery_file` is the SDK's own copy, since bq otherwise fetches
        `$discovery/rest` from the endpoint (bqemulator: 404); a dummy token and a private gcloud
        config keep it from looking for credentials or the user's settings."""
        bq = shutil.which("bq")
        discovery = bq and Path(bq).resolve().parent.parent / "platform/bq/discovery_next/bigquery.json"
        if not bq or not discovery.is_file():
            return None
        config_dir.mkdir(parents=True, exist_ok=True)
        token = config_dir / "token"
        token.write_text("emulator")
        env = dict(
            os.environ,
            CLOUDSDK_CONFIG=str(config_dir),
            CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=str(token),
            CLOUDSDK_CORE_PROJECT=self.project,
            CLOUDSDK_CORE_DISABLE_PROMPTS="1",
            CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="1",
            CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="1",
        )
        argv = [bq, f"--api={self.rest_url}", f"--discovery_file={discovery}", f"--project_id={self.project}"]
        return [*argv, "--headless"], env


def _grpc_serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        return reply.status == health_pb2.HealthCheckResponse.SERVING


def start_bigquery_emulator(
    work_dir: Path, gcs_root: Path | None = None, project: str = PROJECT, timeout_s: float = STARTUP_TIMEOUT_S
) -> BigQueryEmulator:
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / "bqemulator.log"
    env = dict(
        os.environ,
        BQEMU_ENABLE_FORMAT_EXTENSIONS="false",  # no `INSTALL avro` (network) at boot
        BQEMU_LOG_LEVEL="warning",
        BQEMU_LOG_FORMAT="console",
        BQEMU_UPLOAD_STAGING_DIR=str(work_dir / "uploads"),
        EMULATOR_PARENT_PID=str(os.getpid()),
    )
    for key in ("BIGQUERY_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
        env.pop(key, None)
    if gcs_root is not None:
        env["BQEMU_GCS_LOCAL_ROOT"] = str(gcs_root)  # gs://B/NAME -> <gcs_root>/B/NAME for load jobs

    def attempt() -> BigQueryEmulator:
        rest_port = free_port()
        while (grpc_port := free_port()) == rest_port:
            pass
        started, offset = time.monotonic(), _log_size(log)
        argv = [
            _PYTHON,
            "-c",
            _PRELUDE + _BQ_SHIM,
            "start",
            "--ephemeral",
            "--project",
            project,
            "--rest-port",
            str(rest_port),
            "--grpc-port",
            str(grpc_port),
        ]
        proc = _spawn(argv, log, env)
        rest_url, grpc_target = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
        # REST binds first, then gRPC: wait for both.
        ports = (rest_port, grpc_port)
        _wait_ready(proc, lambda: _http_ok(f"{rest_url}/readyz"), "bqemulator REST", log, timeout_s, ports, offset)
        _wait_ready(proc, lambda: _grpc_serving(grpc_target), "bqemulator gRPC", log, timeout_s, ports, offset)
        return BigQueryEmulator(rest_url, grpc_target, project, proc, log, time.monotonic() - started)

    return _start_with_retries(attempt)


_READ_CLIENT_CLASSES: dict[str, type] = {}


def _emulator_read_client_class(grpc_target: str) -> type:
    """A BigQueryReadClient subclass whose no-argument constructor (what Beam calls) talks plaintext
    gRPC to the emulator instead of TLS to bigquerystorage.googleapis.com."""
    if grpc_target in _READ_CLIENT_CLASSES:
        return _READ_CLIENT_CLASSES[grpc_target]
    import grpc
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports.grpc import BigQueryReadGrpcTransport

    class EmulatorBigQueryReadClient(BigQueryReadClient):
        def __init__(self, *args, **kwargs):
            if not args and kwargs.get("transport") is None:
                kwargs.pop("credentials", None)
                kwargs.pop("client_options", None)
                channel = grpc.insecure_channel(
                    grpc_target,
                    options=[
                        ("grpc.max_send_message_length", -1),
                        ("grpc.max_receive_message_length", -1),
                        ("grpc.enable_http_proxy", 0),
                    ],
                )
                kwargs["transport"] = BigQueryReadGrpcTransport(channel=channel)
            super().__init__(*args, **kwargs)

    _READ_CLIENT_CLASSES[grpc_target] = EmulatorBigQueryReadClient
    return EmulatorBigQueryReadClient


# --------------------------------------------------------------------------------------------
# Client-side patches, all reverted by the MonkeyPatch that applies them
# --------------------------------------------------------------------------------------------


def _parse_label_filter(filter_str: str | None) -> dict[str, str | None]:
    """'labels.type:bq_direct_read_x labels.env' -> {'type': 'bq_direct_read_x', 'env': None}."""
    wanted: dict[str, str | None] = {}
    for token in (filter_str or "").split():
        if token.startswith("labels."):
            key, _, value = token[len("labels.") :].partition(":")
            wanted[key] = value or None
    return wanted


def _labels_of(dataset) -> dict[str, str]:
    labels = getattr(dataset, "labels", None)
    return {p.key: p.value for p in getattr(labels, "additionalProperties", None) or []}


def _filtering_datasets_list(original):
    def List(self, request, global_params=None):
        response = original(self, request, global_params=global_params)
        wanted = _parse_label_filter(getattr(request, "filter", None))
        if wanted:
            response.datasets = [
                d
                for d in response.datasets
                if all(k in (labels := _labels_of(d)) and (v is None or labels[k] == v) for k, v in wanted.items())
            ]
        return response

    List.method_config = original.method_config  # apitools looks the HTTP method/path up on it
    return List


def point_clients_at_emulators(mp: pytest.MonkeyPatch, gcs: GcsEmulator, bq: BigQueryEmulator) -> None:
    """Applies every redirection described in the module docstring to this process, through `mp`."""
    import apache_beam.io.gcp.bigquery as beam_bigquery
    import google.auth
    from apache_beam.internal.gcp import auth as beam_auth
    from apache_beam.io.gcp.internal.clients.bigquery import bigquery_v2_client
    from apache_beam.runners.portability import prism_runner
    from google.auth.credentials import AnonymousCredentials

    # requests, gRPC and Beam's httplib2 (apitools) all honour http(s)_proxy, and Beam's ignores
    # no_proxy (without PySocks it fails outright: ProxiesUnavailableError): no proxy for the session.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        mp.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        mp.setenv(name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1", "localhost"])))
    mp.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    mp.setenv("BIGQUERY_EMULATOR_HOST", bq.rest_url)
    mp.setenv("GOOGLE_CLOUD_PROJECT", bq.project)

    def anonymous_default(scopes=None, request=None, quota_project_id=None, default_scopes=None):
        return AnonymousCredentials(), bq.project

    mp.setattr(google.auth, "default", anonymous_default)
    # Beam caches the first credentials it finds (or None) for the life of the process.
    mp.setattr(beam_auth._Credentials, "_credentials_init", False)
    mp.setattr(beam_auth._Credentials, "_credentials", None)

    bigquery_v2 = bigquery_v2_client.BigqueryV2
    mp.setattr(bigquery_v2, "BASE_URL", f"{bq.rest_url}/bigquery/v2/")
    mp.setattr(bigquery_v2.DatasetsService, "List", _filtering_datasets_list(bigquery_v2.DatasetsService.List))

    # Beam 2.77's DirectRunner first tries PrismRunner, which downloads a Go binary from GitHub with
    # no timeout (offline: fails in ms if DNS fails, hangs for minutes where packets are dropped),
    # and runs the job through a separate job server. Refusing it makes DirectRunner fall back, as
    # it does on any Prism error, to the in-process FnApiRunner, where every patch here applies.
    def _prism_disabled(self, pipeline, options):
        raise RuntimeError("PrismRunner is disabled by the emulator fixtures; DirectRunner runs in-process")

    mp.setattr(prism_runner.PrismRunner, "run_pipeline", _prism_disabled)

    real = beam_bigquery.bq_storage
    proxy = types.ModuleType(real.__name__)
    proxy.__dict__.update(vars(real))
    proxy.BigQueryReadClient = bq.read_client_class()
    mp.setattr(beam_bigquery, "bq_storage", proxy)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class CloudEmulators:
    gcs: GcsEmulator
    bq: BigQueryEmulator
    project: str
    bucket: str

    def beam_options(self, *extra: str) -> list[str]:
        """DirectRunner flags that keep the pipeline in this (patched) process."""
        return [
            "--runner=DirectRunner",
            "--direct_running_mode=in_memory",
            "--direct_num_workers=1",
            f"--project={self.project}",
            f"--temp_location=gs://{self.bucket}/tmp",
            *extra,
        ]


@pytest.fixture(scope="session")
def emulator_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cloud-emulators-"))
    yield path
    if os.environ.get("KEEP_EMULATOR_DIR") != "1":
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def gcs_emulator(emulator_dir: Path) -> Iterator[GcsEmulator]:
    gcs = start_gcs_emulator(emulator_dir / "gcs")
    try:
        yield gcs
    finally:
        _stop(gcs.proc)


@pytest.fixture(scope="session")
def bigquery_emulator(emulator_dir: Path, gcs_emulator: GcsEmulator) -> Iterator[BigQueryEmulator]:
    bq = start_bigquery_emulator(emulator_dir / "bq", gcs_root=gcs_emulator.objects_root)
    try:
        yield bq
    finally:
        _stop(bq.proc)


@pytest.fixture(scope="session")
def cloud_emulators(gcs_emulator: GcsEmulator, bigquery_emulator: BigQueryEmulator) -> Iterator[CloudEmulators]:
    """Both emulators, a bucket, and this process's GCP clients pointed at them for the session."""
    with pytest.MonkeyPatch.context() as mp:
        point_clients_at_emulators(mp, gcs_emulator, bigquery_emulator)
        gcs_emulator.create_bucket(BUCKET)
        yield CloudEmulators(gcs_emulator, bigquery_emulator, bigquery_emulator.project, BUCKET)


__all__ = [
    "BUCKET",
    "PROJECT",
    "BigQueryEmulator",
    "CloudEmulators",
    "GcsEmulator",
    "PubSubEmulator",
    "bigquery_emulator",
    "cloud_emulators",
    "emulator_dir",
    "gcs_emulator",
    "point_clients_at_emulators",
    "pubsub_emulator",
    "start_bigquery_emulator",
    "start_gcs_emulator",
    "start_pubsub_emulator",
]


# --------------------------------------------------------------------------------------------
# Pub/Sub: the emulator that ships with the Google Cloud CLI (Java)
# --------------------------------------------------------------------------------------------


def pubsub_emulator_command() -> list[str] | None:
    """The Cloud SDK's Pub/Sub emulator launcher, or None where the SDK (or its emulator, or Java) is absent."""
    return None if pubsub_emulator_missing() else [str(_pubsub_emulator_script())]


def _pubsub_emulator_script() -> Path | None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    return Path(gcloud).resolve().parent.parent / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"


def pubsub_emulator_missing() -> list[str]:
    """What the Pub/Sub emulator lacks here: gcloud, its pubsub-emulator component, java (empty: nothing)."""
    script, missing = _pubsub_emulator_script(), []
    if script is None:
        missing.append("gcloud")
    elif not script.is_file():
        missing.append("pubsub-emulator component of gcloud (Debian package google-cloud-cli-pubsub-emulator)")
    if shutil.which("java") is None:
        missing.append("java")
    return missing


@dataclasses.dataclass
class PubSubEmulator:
    host: str  # 127.0.0.1:PORT, the PUBSUB_EMULATOR_HOST value
    project: str
    proc: subprocess.Popen
    log: Path
    startup_s: float

    def publisher(self):
        from google.cloud import pubsub_v1

        with _pubsub_host(self.host):
            return pubsub_v1.PublisherClient()

    def subscriber(self):
        from google.cloud import pubsub_v1

        with _pubsub_host(self.host):
            return pubsub_v1.SubscriberClient()

    def topic(self, name: str) -> str:
        """Creates topic `name` (at least 3 characters) if needed; returns its path."""
        path = f"projects/{self.project}/topics/{name}"
        with contextlib.suppress(Exception):  # AlreadyExists
            self.publisher().create_topic(name=path)
        return path

    def subscription(self, name: str, topic: str) -> str:
        """Creates subscription `name` to `topic` if needed; returns its path."""
        path = f"projects/{self.project}/subscriptions/{name}"
        with contextlib.suppress(Exception):  # AlreadyExists
            self.subscriber().create_subscription(name=path, topic=topic, ack_deadline_seconds=60)
        return path


@contextlib.contextmanager
def _pubsub_host(host: str) -> Iterator[None]:
    saved = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = saved


def _grpc_channel_ready(target: str) -> bool:
    import grpc

    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        grpc.channel_ready_future(channel).result(timeout=1)
        return True


def start_pubsub_emulator(
    work_dir: Path, project: str = PROJECT, timeout_s: float = STARTUP_TIMEOUT_S
) -> PubSubEmulator:
    command = pubsub_emulator_command()
    if command is None:
        raise EmulatorStartError("the Cloud SDK's Pub/Sub emulator (and Java) is not installed")
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / "pubsub-emulator.log"

    def attempt() -> PubSubEmulator:
        port = free_port()
        started, offset = time.monotonic(), _log_size(log)
        # The prelude's parent-death signal survives exec: the JVM goes when the test process does.
        exec_code = _PRELUDE + "\nos.execv(sys.argv[1], sys.argv[1:])\n"
        argv = [_PYTHON, "-c", exec_code, *command, "--host=127.0.0.1", f"--port={port}"]
        env = dict(os.environ, EMULATOR_PARENT_PID=str(os.getpid()))
        proc = _spawn(argv, log, env)
        host = f"127.0.0.1:{port}"

        def ready() -> bool:
            return "Server started" in _log_tail(log, 50, offset) and _grpc_channel_ready(host)

        _wait_ready(proc, ready, "Pub/Sub emulator", log, timeout_s, (port,), offset)
        return PubSubEmulator(host, project, proc, log, time.monotonic() - started)

    return _start_with_retries(attempt)


@pytest.fixture(scope="session")
def pubsub_emulator(emulator_dir: Path) -> Iterator[PubSubEmulator]:
    """The Pub/Sub emulator, with PUBSUB_EMULATOR_HOST pointing this process's clients at it for the session."""
    missing = pubsub_emulator_missing()
    require_tool(not missing, f"the Google Cloud CLI's Pub/Sub emulator cannot run here, no {' and no '.join(missing)}")
    emulator = start_pubsub_emulator(emulator_dir / "pubsub")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
            yield emulator
    finally:
        _stop(emulator.proc)
