"""Local fakes of the two Google endpoints a Flex Template launch talks to besides GCS and BigQuery.

No emulator exists for either, so these are small HTTP servers on 127.0.0.1, run in threads of
the test process, that answer the way the real services document it and record every request:

* `FakeMetadataServer`: the GCE metadata server a launcher VM and every worker has. google-auth
  finds it through `GCE_METADATA_HOST` / `GCE_METADATA_IP` and takes the VM's service-account
  token from it, exactly as on Dataflow, so the launched process needs no key file and no patch.
* `FakeDataflowApi`: the Dataflow v1b3 REST API: `projects.locations.jobs.create` / `get` (what
  Beam's DataflowRunner calls when it submits a job itself) and
  `projects.locations.flexTemplates.launch` (what `gcloud dataflow flex-template run` sends).
  A launch request is checked as the service checks it against the template's `metadata.json`
  (unknown or missing parameters, values that fail a parameter's regexes); the answer is
  an error the way the service gives it, and the request is recorded either way.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT = "test-project"
SERVICE_ACCOUNT = f"launcher@{PROJECT}.iam.gserviceaccount.com"
FAKE_TOKEN = "fake-metadata-token"


@dataclasses.dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it is not JSON


class _Server:
    """A ThreadingHTTPServer on a free 127.0.0.1 port whose handler calls `self.answer`."""

    def __init__(self):
        self.requests: list[Request] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                outer.requests.append(request)
                status, payload, headers = outer.answer(request)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):  # quiet: requests are recorded instead
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()

    def answer(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeMetadataServer(_Server):
    """The GCE metadata server: a project id and the default service account's access token."""

    def __init__(self, project: str = PROJECT):
        self.project = project
        super().__init__()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What google-auth reads to find it (on a VM it is at 169.254.169.254)."""
        return {"GCE_METADATA_HOST": self.host, "GCE_METADATA_IP": self.host}

    def answer(self, request: Request):
        flavor = {"Metadata-Flavor": "Google"}
        if request.headers.get("metadata-flavor") != "Google":
            return 403, {"error": "missing Metadata-Flavor: Google"}, flavor
        path = request.path.split("?", 1)[0].rstrip("/")
        answers = {
            "": b"computeMetadata/\n",
            "/computeMetadata/v1/project/project-id": self.project.encode(),
            "/computeMetadata/v1/universe/universe-domain": b"googleapis.com",
        }
        # The account answers by its alias and by its email, as on a VM: google-auth asks for `default` first,
        # then, on a later refresh of the same credentials, by the email it was told.
        for name in ("default", SERVICE_ACCOUNT):
            account = f"/computeMetadata/v1/instance/service-accounts/{name}"
            answers[account] = {
                "aliases": ["default"],
                "email": SERVICE_ACCOUNT,
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
            answers[f"{account}/email"] = SERVICE_ACCOUNT.encode()
            answers[f"{account}/token"] = {"access_token": FAKE_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
        if path not in answers:
            return 404, b"not found", {**flavor, "Content-Type": "text/html"}
        payload = answers[path]
        content_type = "application/json" if isinstance(payload, dict) else "application/text"
        return 200, payload, {**flavor, "Content-Type": content_type}


_FINISHED = {"JOB_STATE_DONE", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_UPDATED", "JOB_STATE_DRAINED"}
_JOBS = re.compile(r"^/v1b3/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/jobs(?:/(?P<job>[^/?]+))?")
_LAUNCH = re.compile(r"^/v1b3/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/flexTemplates:launch")


@dataclasses.dataclass
class CapturedLaunch:
    """One flexTemplates:launch request: where it was sent, and its launchParameter."""

    project: str
    location: str
    parameter: dict
    accepted: bool


class FakeDataflowApi(_Server):
    """Dataflow v1b3: jobs.create / jobs.get, and flexTemplates:launch checked against a template's metadata."""

    def __init__(self, template_metadata: dict | None = None, streaming_metadata: dict | None = None):
        self.template_metadata = template_metadata
        self.streaming_metadata = streaming_metadata
        self.jobs: dict[str, dict] = {}
        self.launches: list[CapturedLaunch] = []
        self._ids = itertools.count(1)
        super().__init__()

    @property
    def url(self) -> str:
        """For Beam's --dataflow_endpoint: Beam talks REST (not gRPC) only to a 'localhost' endpoint."""
        return f"http://localhost:{self.port}"

    def _new_id(self) -> str:
        return f"2026-11-25_00_00_00-{next(self._ids):019d}"

    def answer(self, request: Request):
        path = request.path.split("?", 1)[0]
        if request.method == "POST" and (match := _LAUNCH.match(path)):
            return self._launch(match, request.body or {})
        if match := _JOBS.match(path):
            if request.method == "POST" and not match["job"]:
                job = dict(
                    request.body or {}, id=self._new_id(), projectId=match["project"], location=match["location"]
                )
                job["currentState"] = "JOB_STATE_PENDING"
                job["createTime"] = job["currentStateTime"] = "2026-11-25T00:00:00Z"
                self.jobs[job["id"]] = job
                return 200, job, {}
            if request.method == "GET" and not match["job"]:  # jobs.list (gcloud's, and an update's look-up)
                where = (match["project"], match["location"])
                jobs = [job for job in self.jobs.values() if (job["projectId"], job["location"]) == where]
                if "filter=ACTIVE" in request.path:
                    jobs = [job for job in jobs if job.get("currentState") not in _FINISHED]
                return 200, {"jobs": jobs}, {}
            if request.method == "GET" and match["job"] in self.jobs:
                return 200, self.jobs[match["job"]], {}
            if request.method == "PUT" and match["job"] in self.jobs:  # jobs.update: drain, cancel
                job = self.jobs[match["job"]]
                if requested := (request.body or {}).get("requestedState"):
                    job["requestedState"] = requested
                return 200, job, {}
        return _error(404, f"fake Dataflow API: no such resource {request.method} {path}", "NOT_FOUND")

    def _launch(self, match, body: dict):
        launch = body.get("launchParameter") or {}
        streaming = "streaming" in (launch.get("containerSpecGcsPath") or "").rsplit("/", 1)[-1]
        metadata = self.streaming_metadata if streaming and self.streaming_metadata else self.template_metadata
        problems = check_launch_parameters(launch.get("parameters") or {}, metadata)
        self.launches.append(CapturedLaunch(match["project"], match["location"], launch, accepted=not problems))
        if problems:
            return _error(400, "Invalid template parameters: " + "; ".join(problems), "INVALID_ARGUMENT")
        job_id = self._new_id()
        job = {
            "id": job_id,
            "projectId": match["project"],
            "location": match["location"],
            "name": launch.get("jobName"),
            "type": "JOB_TYPE_STREAMING" if streaming else "JOB_TYPE_BATCH",
            "currentState": "JOB_STATE_QUEUED",
            "createTime": "2026-11-25T00:00:00Z",
            "currentStateTime": "2026-11-25T00:00:00Z",
        }
        self.jobs[job_id] = job
        return 200, {"job": job}, {}


def check_launch_parameters(parameters: dict[str, str], template_metadata: dict | None) -> list[str]:
    """What the service refuses in a launch's parameters, by the template's metadata.json."""
    if template_metadata is None:
        return []
    declared = {entry["name"]: entry for entry in template_metadata["parameters"]}
    problems = [f"unknown parameter {name!r}" for name in parameters if name not in declared]
    for name, entry in declared.items():
        if name not in parameters:
            if not entry.get("isOptional", False):
                problems.append(f"missing required parameter {name!r}")
            continue
        for pattern in entry.get("regexes", ()):
            if not re.fullmatch(pattern, str(parameters[name])):
                problems.append(f"parameter {name!r}: {parameters[name]!r} does not match {pattern}")
    return problems


def _error(status: int, message: str, reason: str):
    return status, {"error": {"code": status, "message": message, "status": reason}}, {}
