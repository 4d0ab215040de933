"""bash with the real `gcloud` and `bq` CLIs pointed at the local fakes: the README's commands, as written.

* gcloud: a scratch CLOUDSDK_CONFIG, any string as the access token, and
  `api_endpoint_overrides/dataflow` set to the fake Dataflow API (CLOUDSDK_API_ENDPOINT_OVERRIDES_DATAFLOW);
* bq: a shell function adding `--api=<bqemulator>` and the SDK's own discovery document (see
  BigQueryEmulator.bq_cli), so `bq mk`, `bq load` and `bq query` lines run unchanged;
* the README's variables (PROJECT, REGION, BUCKET) set to the fakes' project and bucket.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.emulators import BigQueryEmulator, PubSubEmulator
from tests.google_fakes import CapturedLaunch, FakeDataflowApi

GCLOUD = shutil.which("gcloud")
BQ = shutil.which("bq")
needs_bq = pytest.mark.skipif(BQ is None, reason="the bq CLI (Cloud SDK) is not installed: bq commands cannot be run")


class CloudShell:
    def __init__(
        self,
        config_dir: Path,
        dataflow: FakeDataflowApi,
        bigquery: BigQueryEmulator | None,
        variables: dict[str, str],
        pubsub: PubSubEmulator | None = None,
    ):
        self.dataflow = dataflow
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
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            self.env.pop(name, None)
        self.preamble = ""
        bq = bigquery.bq_cli(config_dir / "bq") if bigquery is not None else None
        if bq is not None:
            argv, bq_env = bq
            self.env.update({key: bq_env[key] for key in bq_env if key.startswith("CLOUDSDK_") and key not in self.env})
            self.preamble = f'bq() {{ {shlex.join(argv)} "$@"; }}\n'

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
