"""docs/report.md as written: its drift example run from the repository (the penguins of Biscoe against a
baseline of the other islands' rows, made without a model call), whose drifted inputs are flagged and
clean ones not, exactly as the docs' table says; and its alerting policy, sent by the real gcloud to a
local fake of the Cloud Monitoring API that parses it as the service does (the v3 AlertPolicy message:
an unknown field or value is refused), on the Dataflow counter the job increments."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from google.cloud import monitoring_v3

from pipeline.job.statistics import DRIFTED_FEATURES, DRIFTED_PREFIX
from tests.conftest import ROOT
from tests.google_fakes import PROJECT, Request, _Server
from tests.readme import block_holding, commands_starting_with
from tests.tools import GCLOUD, requires_tool

DOC = (ROOT / "docs" / "report.md").read_text()
SPLIT = block_holding("awk -F,", DOC)
RUNS = commands_starting_with(".venv/bin/python template/main.py --input build/drift/", DOC)
(CREATE_POLICY,) = commands_starting_with("gcloud alpha monitoring policies create", DOC)
POLICY = ROOT / "docs" / "drift-alert-policy.json"
DRIFT_ROW = re.compile(
    r"^\| `(?P<key>[\w.]+)` \| (?P<measure>[\w-]+) \| (?P<distance>[\d.]+) \| (?P<drifted>yes|no) \|$", re.M
)
MEASURES = {"L-infinity": "l_infinity", "Jensen-Shannon": "jensen_shannon"}


def docs_drift_table() -> dict[str, tuple[str, str, bool]]:
    return {
        row["key"]: (MEASURES[row["measure"]], row["distance"], row["drifted"] == "yes")
        for row in DRIFT_ROW.finditer(DOC)
    }


@pytest.mark.slow
def test_the_drift_example_flags_the_drifted_inputs_and_not_the_clean_ones_as_the_docs_say():
    assert len(SPLIT) == 3 and len(RUNS) == 2, (SPLIT, RUNS)
    for command in SPLIT:
        result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
    for command in RUNS:
        argv = shlex.split(command)
        result = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
    baseline = json.loads((ROOT / "build/drift/baseline-stats.json").read_text())
    assert baseline["run"]["statistics_only"] and baseline["outputs"] == {} and baseline["run"]["records_read"] == 170
    stats = json.loads((ROOT / "build/drift/biscoe-stats.json").read_text())
    assert stats["drift"]["baseline"] == "build/drift/baseline-stats.json" and stats["drift"]["threshold"] == 0.3
    measured = {
        key: (score["measure"], f"{score['distance']:.3f}", score["drifted"])
        for key, score in stats["drift"]["features"].items()
    }
    assert measured == docs_drift_table()
    assert list(measured) == list(docs_drift_table())  # the docs' order: the report's, largest first
    report = (ROOT / "build/drift/biscoe-report.html").read_text()
    assert "4 of 6 features drifted</b> from the baseline: inputs.island, inputs.flipper_length_mm" in report
    assert 'class="card drifted" id="f-inputs.island"' in report and 'class="card" id="f-inputs.sex"' in report


class FakeMonitoringApi(_Server):
    """`projects.alertPolicies.create` of the Cloud Monitoring v3 REST API: the body parsed into the service's
    AlertPolicy message (an unknown field or enum value is a 400, as the service answers), and given a name."""

    def __init__(self):
        self.created: list[monitoring_v3.AlertPolicy] = []
        super().__init__()

    def answer(self, request: Request):
        path = request.path.split("?", 1)[0]
        if request.method != "POST" or path != f"/v3/projects/{PROJECT}/alertPolicies":
            return 404, {"error": {"code": 404, "message": f"no {request.method} {path}", "status": "NOT_FOUND"}}, {}
        try:
            policy = monitoring_v3.AlertPolicy.from_json(json.dumps(request.body))
        except Exception as error:
            return 400, {"error": {"code": 400, "message": str(error), "status": "INVALID_ARGUMENT"}}, {}
        policy.name = f"projects/{PROJECT}/alertPolicies/{len(self.created) + 1}"
        self.created.append(policy)
        return 200, json.loads(monitoring_v3.AlertPolicy.to_json(policy, use_integers_for_enums=False)), {}


def gcloud(command: str, api: FakeMonitoringApi, config_dir) -> subprocess.CompletedProcess:
    """A docs command in bash, with gcloud's Monitoring API at the fake, any token, and PROJECT set."""
    token = config_dir / "token"
    config_dir.mkdir(exist_ok=True)
    token.write_text("fake-token")
    environment = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    environment |= {
        "CLOUDSDK_CONFIG": str(config_dir),
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING": f"http://127.0.0.1:{api.port}/",
        "PROJECT": PROJECT,
    }
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@requires_tool(GCLOUD is not None, "gcloud is not installed: the docs' alerting policy is not sent")
def test_the_alert_policy_is_created_by_the_docs_command_on_the_counter_the_job_increments(tmp_path):
    with FakeMonitoringApi() as api:
        result = gcloud(CREATE_POLICY, api, tmp_path / "gcloud")
        assert result.returncode == 0, result.stdout + result.stderr
        (policy,) = api.created
        broken = tmp_path / "broken.json"
        broken.write_text(POLICY.read_text().replace('"comparison"', '"comparisson"'))
        refused = gcloud(CREATE_POLICY.replace("docs/drift-alert-policy.json", str(broken)), api, tmp_path / "gcloud")
        assert refused.returncode != 0 and len(api.created) == 1  # a misspelt field is refused, here as there
        assert 'no field named "comparisson"' in refused.stderr
    (condition,) = policy.conditions
    threshold = condition.condition_threshold
    filters = set(re.split(r"\s+AND\s+", threshold.filter))
    assert filters == {
        'resource.type = "dataflow_job"',
        'metric.type = "dataflow.googleapis.com/job/user_counter"',
        'metric.labels.metric_name = "drifted_features"',  # the counter job/statistics.py increments
    }
    assert threshold.comparison == monitoring_v3.ComparisonType.COMPARISON_GT and threshold.threshold_value == 0
    (aggregation,) = threshold.aggregations
    assert list(aggregation.group_by_fields) == ["resource.label.job_name"]  # an incident per job
    assert policy.enabled and "<output>-report.html" in policy.documentation.content


def test_the_counter_the_policy_watches_is_the_one_the_job_increments():
    text = POLICY.read_text()
    assert f'metric_name = \\"{DRIFTED_FEATURES}\\"' in text and DRIFTED_PREFIX + "inputs.island" in DOC
