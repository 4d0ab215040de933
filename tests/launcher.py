"""A launch harness faithful to the Dataflow Flex Template launcher, runnable offline.

The launcher (the `python_template_launcher` binary in the image) runs the image's
`FLEX_TEMPLATE_PYTHON_PY_FILE` with the image's environment, in its WORKDIR, as

    python /template/main.py --runner=DataflowRunner --project=P --region=R --job_name=NAME
        --staging_location=gs://B/staging --temp_location=gs://B/tmp
        --template_location=gs://B/staging/template_launches/<launch id>/job_object
        [environment options such as --service_account_email, --max_num_workers]
        --<parameter>=<value> ...

and, once the process exits 0, submits the job object that Beam wrote to `--template_location`.
This harness does the same against local stand-ins: the GCS emulator (`STORAGE_EMULATOR_HOST`),
the BigQuery emulator (`BIGQUERY_EMULATOR_HOST`) when a launch reads or writes tables, the fake
GCE metadata server for credentials (`GCE_METADATA_HOST`, as a launcher VM has one), and the
fake Dataflow API (`--dataflow_endpoint`) for launches that submit a job themselves. Those are
the only variables added to the image's own; `tests/launch_guard` refuses any connection that
would leave 127.0.0.1. The Python interpreter is the project's venv, installed from the same
lock as the image.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from scripts import measure
from tests.emulators import BigQueryEmulator, GcsEmulator
from tests.google_fakes import FakeDataflowApi, FakeMetadataServer
from tests.image_layout import ImageRoot, build_image_root

GUARD_DIR = Path(__file__).resolve().parent / "launch_guard"
REGION = "us-central1"


@dataclasses.dataclass(frozen=True)
class LaunchEnvironment:
    """What `gcloud dataflow flex-template run` puts in a launch besides the parameters."""

    project: str
    bucket: str
    job_name: str = "batch-prediction-launch"
    region: str = REGION
    launch_id: str = "2026-11-25_00_00_00-1"
    extra_options: tuple[str, ...] = ()
    temp: str | None = None  # --temp-location; the launcher's default bucket otherwise
    staging: str | None = None  # --staging-location; likewise

    @property
    def staging_location(self) -> str:
        return self.staging or f"gs://{self.bucket}/staging"

    @property
    def temp_location(self) -> str:
        return self.temp or f"gs://{self.bucket}/tmp"

    @property
    def template_location(self) -> str:
        return f"{self.staging_location}/template_launches/{self.launch_id}/job_object"

    def runner_options(self, template_mode: bool = True) -> list[str]:
        options = [
            "--runner=DataflowRunner",
            f"--project={self.project}",
            f"--region={self.region}",
            f"--job_name={self.job_name}",
            f"--staging_location={self.staging_location}",
            f"--temp_location={self.temp_location}",
            *self.extra_options,
        ]
        if template_mode:
            options.append(f"--template_location={self.template_location}")
        return options


# FlexTemplateRuntimeEnvironment fields of a launch request, and the pipeline options they become.
_ENVIRONMENT_OPTIONS = {
    "numWorkers": "num_workers",
    "maxWorkers": "max_num_workers",
    "serviceAccountEmail": "service_account_email",
    "machineType": "machine_type",
    "network": "network",
    "subnetwork": "subnetwork",
    "workerRegion": "worker_region",
    "workerZone": "worker_zone",
    "kmsKeyName": "dataflow_kms_key",
    "sdkContainerImage": "sdk_container_image",
    "diskSizeGb": "disk_size_gb",
}


def invocation_of(request: dict, project: str, region: str, bucket: str) -> tuple[LaunchEnvironment, dict[str, str]]:
    """The launcher's environment and parameters for a captured flexTemplates:launch request body's
    `launchParameter` (an unknown environment field fails here rather than being dropped)."""
    environment = dict(request.get("environment") or {})
    options: list[str] = []
    for experiment in environment.pop("additionalExperiments", []):
        options.append(f"--experiments={experiment}")
    if environment.pop("ipConfiguration", None) == "WORKER_IP_PRIVATE":
        options.append("--no_use_public_ips")
    if environment.pop("enableStreamingEngine", False):
        options.append("--enable_streaming_engine")
    if request.get("update"):  # replace the running job of the same name, in place
        options.append("--update")
    for old, new in (request.get("transformNameMappings") or {}).items():
        options.append(f"--transform_name_mapping={json.dumps({old: new})}")
    temp, staging = environment.pop("tempLocation", None), environment.pop("stagingLocation", None)
    for field, value in environment.items():
        if field not in _ENVIRONMENT_OPTIONS:
            raise ValueError(f"the harness does not know how the launcher passes environment field {field!r}")
        options.append(f"--{_ENVIRONMENT_OPTIONS[field]}={value}")
    launch = LaunchEnvironment(
        project=project,
        bucket=bucket,
        job_name=request["jobName"],
        region=region,
        launch_id=request["jobName"],
        extra_options=tuple(options),
        temp=temp,
        staging=staging,
    )
    return launch, dict(request.get("parameters") or {})


@dataclasses.dataclass
class Launch:
    """One run of main.py as the launcher runs it, and what it left behind."""

    argv: list[str]
    env: dict[str, str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float
    blocked: list[str]  # connections the guard refused

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class FlexTemplateLauncher:
    """Runs the image's main.py the way the Flex Template launcher does, against local fakes."""

    def __init__(
        self,
        work_dir: Path,
        gcs: GcsEmulator,
        metadata: FakeMetadataServer,
        dataflow: FakeDataflowApi | None = None,
        bigquery: BigQueryEmulator | None = None,
        template_image: str = "us-central1-docker.pkg.dev/test-project/dataflow/batch-prediction:abc123",
        build_args: dict[str, str] | None = None,
    ):
        self.work_dir = work_dir
        self.gcs = gcs
        self.metadata = metadata
        self.dataflow = dataflow
        self.bigquery = bigquery
        self.image: ImageRoot = build_image_root(
            work_dir / "image", {"TEMPLATE_IMAGE": template_image, **(build_args or {})}
        )
        self._runs = 0

    def env(self, guard_log: Path, **overrides: str | None) -> dict[str, str]:
        env = dict(self.image.env)
        env.update(self.metadata.env())
        env["STORAGE_EMULATOR_HOST"] = self.gcs.url
        if self.bigquery is not None:
            env["BIGQUERY_EMULATOR_HOST"] = self.bigquery.rest_url
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(GUARD_DIR)])
        env["LAUNCH_GUARD_LOG"] = str(guard_log)
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def launch(
        self,
        parameters: dict[str, str],
        environment: LaunchEnvironment,
        *,
        template_mode: bool = True,
        extra_args: tuple[str, ...] = (),
        env_overrides: dict[str, str | None] | None = None,
        timeout_s: float = 240,
    ) -> Launch:
        arguments = [
            *environment.runner_options(template_mode),
            *extra_args,
            *[f"--{name}={value}" for name, value in parameters.items()],
        ]
        return self.run_main(arguments, env_overrides=env_overrides, timeout_s=timeout_s)

    def run_main(
        self, arguments: list[str], *, env_overrides: dict[str, str | None] | None = None, timeout_s: float = 240
    ) -> Launch:
        """The image's main.py with these arguments, in the image's directory and environment. A job
        submitted outside template mode goes to the fake Dataflow API, if there is one."""
        # A submitted job goes to the fake API; so does an update's look-up of the job it replaces.
        submits = not any(arg.startswith("--template_location") for arg in arguments) or "--update" in arguments
        if self.dataflow is not None and submits:
            arguments = [*arguments, f"--dataflow_endpoint={self.dataflow.url}"]
        self._runs += 1
        guard_log = self.work_dir / f"guard-{self._runs}.log"
        guard_log.write_text("")
        env = self.env(guard_log, **(env_overrides or {}))
        argv = [sys.executable, env["FLEX_TEMPLATE_PYTHON_PY_FILE"], *arguments]
        returncode, stdout, stderr, wall_s, peak_rss_mb = run_measured(argv, self.image.workdir, env, timeout_s)
        return Launch(
            argv=argv,
            env=env,
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            wall_s=wall_s,
            peak_rss_mb=peak_rss_mb,
            blocked=[line for line in guard_log.read_text().splitlines() if line],
        )

    def read_json(self, uri: str) -> dict:
        return json.loads(self.gcs.local_path(uri).read_bytes())


def run_measured(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float):
    """(exit status, stdout, stderr, wall seconds, peak RSS in MB) of one child process."""
    measured = measure.run_measured(argv, cwd, env, timeout_s)
    return measured.status, measured.stdout, measured.stderr, measured.wall_s, measured.peak_rss_mb
