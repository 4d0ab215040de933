"""bash with the real `gcloud` and `bq` CLIs pointed at the local fakes: the README's commands, as written.

* gcloud: a scratch CLOUDSDK_CONFIG, any string as the access token, and
  `api_endpoint_overrides/dataflow` set to the fake Dataflow API (CLOUDSDK_API_ENDPOINT_OVERRIDES_DATAFLOW);
* gcloud storage: `api_endpoint_overrides/storage` set to a `GcloudStorageFront` before the GCS emulator
  (see there), when a CloudShell is given the emulator;
* bq: a shell function adding `--api=<bqemulator>` and the SDK's own discovery document (see
  BigQueryEmulator.bq_cli), so `bq mk`, `bq load` and `bq query` lines run unchanged;
* the README's variables (PROJECT, REGION, BUCKET) set to the fakes' project and bucket.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.emulators import BigQueryEmulator, GcsEmulator, PubSubEmulator
from tests.fault_proxy import FaultProxy
from tests.google_fakes import CapturedLaunch, FakeDataflowApi


class GcloudStorageFront(FaultProxy):
    """A reverse proxy (no faults) before the GCS emulator that takes the three requests of `gcloud storage`
    the emulator cannot, as GCS takes them; everything else is forwarded as is:

    * a resumable upload starts at /resumable/upload/storage/v1/... (apitools' path), not /upload/storage/v1/...;
    * a multipart upload's boundary is quoted `boundary='...'` (apitools' `%r`), which Python's email parser,
      and so the emulator, does not unquote;
    * `cp -r` asks for the bucket's storageLayout (is it a hierarchical namespace?): answered "no" for a
      bucket the emulator has.
    """

    def __init__(self, gcs: GcsEmulator):
        super().__init__(gcs.url, name="gcloud-storage-front")

    def _forward(self, handler, request):
        if request.path.startswith("/resumable/upload/"):
            request = dataclasses.replace(request, path=request.path.removeprefix("/resumable"))
        content_type = handler.headers.get("Content-Type", "")
        if (unquoted := re.sub(r"boundary='([^']*)'", r'boundary="\1"', content_type)) != content_type:
            handler.headers.replace_header("Content-Type", unquoted)
        if request.method == "GET" and (bucket := re.fullmatch(r"/storage/v1/b/([^/]+)/storageLayout", request.path)):
            status, reason, headers, body = super()._forward(
                handler, dataclasses.replace(request, path=f"/storage/v1/b/{bucket[1]}", query="")
            )
            if status == 200:
                layout = {
                    "kind": "storage#storageLayout",
                    "bucket": bucket[1],
                    "hierarchicalNamespace": {"enabled": False},
                }
                body = json.dumps(layout).encode()
            return status, reason, headers, body
        return super()._forward(handler, request)


class CloudShell:
    def __init__(
        self,
        config_dir: Path,
        dataflow: FakeDataflowApi,
        bigquery: BigQueryEmulator | None,
        variables: dict[str, str],
        pubsub: PubSubEmulator | None = None,
        gcs: GcsEmulator | None = None,
    ):
        self.dataflow = dataflow
        self.storage_front: GcloudStorageFront | None = None
        config_dir.mkdir(parents=True, exist_ok=True)
        token = config_dir / "token"
        token.write_text("fake-token")
        self.env = dict(
            os.environ,
            CLOUDSDK_CONFIG=str(config_dir),
            CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=str(token),
            CLOUDSDK_CORE_PROJECT=variables["PROJECT"],
            CLOUDSDK_CORE_DISABLE_PROMPTS="1",
            CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="1",
            CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="1",
            CLOUDSDK_API_ENDPOINT_OVERRIDES_DATAFLOW=f"http://127.0.0.1:{dataflow.port}/",
            **variables,
        )
        if pubsub is not None:  # `gcloud pubsub ...` on the emulator, which answers REST as the service does
            self.env["CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB"] = f"http://{pubsub.host}/"
        if gcs is not None:  # `gcloud storage ...` on the emulator, through the front that mends gcloud's uploads
            self.storage_front = GcloudStorageFront(gcs).start()
            self.env["CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"] = f"{self.storage_front.url}/storage/v1/"
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            self.env.pop(name, None)
        self.preamble = ""
        bq = bigquery.bq_cli(config_dir / "bq") if bigquery is not None else None
        if bq is not None:
            argv, bq_env = bq
            self.env.update({key: bq_env[key] for key in bq_env if key.startswith("CLOUDSDK_") and key not in self.env})
            self.preamble = f'bq() {{ {shlex.join(argv)} "$@"; }}\n'

    def close(self) -> None:
        """Stops the storage front, if any (its thread is a daemon: a session fixture may leave it)."""
        if self.storage_front is not None:
            self.storage_front.stop()

    def run(self, command: str, timeout_s: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", self.preamble + command],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def send_launch(self, command: str) -> CapturedLaunch:
        """Runs a `gcloud dataflow flex-template run` command; returns the one launch it sent."""
        before = len(self.dataflow.launches)
        result = self.run(command)
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
        (captured,) = self.dataflow.launches[before:]
        return captured


def load_images_table(shell: CloudShell, bigquery: BigQueryEmulator, commands: list[str], project: str) -> int:
    """Runs `bq mk` and `bq load` lines that make mnist.images, from a clean slate as a new project has
    (other tests use the same dataset, so `bq mk` may find it made); returns the table's row count."""
    bigquery.client().delete_table(f"{project}.mnist.images", not_found_ok=True)
    for command in commands:
        result = shell.run(command)
        made_before = command.startswith("bq mk") and "already exists" in result.stdout + result.stderr
        assert result.returncode == 0 or made_before, f"{command}: {(result.stdout + result.stderr)[-2000:]}"
    return bigquery.client().get_table(f"{project}.mnist.images").num_rows
