"""The streaming spec the build publishes declares `streaming` and its streaming modes.

`gcloud dataflow flex-template build` keeps only name, description and parameters of a metadata file, so the
build's complete-streaming-template step adds the rest back (scripts/complete_template_spec.py). Here both
steps run as the build runs them: Cloud Build's substitutions applied, the real gcloud writing to and reading
from the GCS emulator; then the spec they left is read back.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from scripts import complete_template_spec
from scripts.complete_template_spec import DROPPED_BY_GCLOUD, SpecError, complete
from tests.cloud_shell import CloudShell
from tests.conftest import ROOT
from tests.emulators import PROJECT
from tests.launcher import REGION
from tests.test_cloudbuild import STEPS, build_values, cloud_build_substitute, script
from tests.tools import GCLOUD, require_tool

STREAMING_METADATA = json.loads((ROOT / "metadata-streaming.json").read_text())
BATCH_METADATA = json.loads((ROOT / "metadata.json").read_text())


def gcloud_spec(metadata: dict) -> dict:
    """A spec as gcloud writes one: the metadata file's name, description and parameters only."""
    kept = {name: metadata[name] for name in ("name", "description", "parameters")}
    return {"defaultEnvironment": {}, "image": "r/i:t", "metadata": kept, "sdkInfo": {"language": "PYTHON"}}


def test_the_streaming_metadata_declares_both_modes_and_exactly_once_by_default():
    assert {name: STREAMING_METADATA[name] for name in DROPPED_BY_GCLOUD} == {
        "streaming": True,
        "supportsAtLeastOnce": True,
        "supportsExactlyOnce": True,
        "defaultStreamingMode": "EXACTLY_ONCE",
    }
    assert BATCH_METADATA["streaming"] is False
    assert not set(DROPPED_BY_GCLOUD[1:]) & set(BATCH_METADATA)  # a batch job has no streaming mode


def test_completing_adds_what_gcloud_dropped_and_changes_nothing_else():
    spec = gcloud_spec(STREAMING_METADATA)
    completed = complete(spec, STREAMING_METADATA)
    assert {name: completed["metadata"][name] for name in DROPPED_BY_GCLOUD} == {
        name: STREAMING_METADATA[name] for name in DROPPED_BY_GCLOUD
    }
    assert {key: value for key, value in completed["metadata"].items() if key not in DROPPED_BY_GCLOUD} == spec[
        "metadata"
    ]
    assert {key: value for key, value in completed.items() if key != "metadata"} == {
        key: value for key, value in spec.items() if key != "metadata"
    }
    assert "streaming" not in spec["metadata"]  # the spec given is left as it was
    assert complete(completed, STREAMING_METADATA) == completed  # a second run changes nothing


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Another template"}, "built from metadata named 'Streaming prediction with TensorFlow'"),
        ({"defaultStreamingMode": "AT_MOST_ONCE"}, "not one of UNSPECIFIED, EXACTLY_ONCE, AT_LEAST_ONCE"),
        ({"supportsExactlyOnce": False}, "valid only where supportsAtLeastOnce and supportsExactlyOnce are true"),
        ({"streaming": False}, "set in a template that is not streaming: true"),
    ],
)
def test_a_metadata_file_that_does_not_fit_is_refused_with_one_line(tmp_path, change, message):
    metadata, spec = tmp_path / "metadata.json", tmp_path / "spec.json"
    metadata.write_text(json.dumps({**STREAMING_METADATA, **change}))
    spec.write_text(json.dumps(gcloud_spec(STREAMING_METADATA)))
    before = spec.read_text()
    result = subprocess.run(
        [sys.executable, complete_template_spec.__file__, str(spec), f"--metadata-file={metadata}"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("complete_template_spec: ") and message in line, line
    assert spec.read_text() == before


def test_a_local_spec_is_completed_in_place_as_gcloud_formats_it(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(gcloud_spec(STREAMING_METADATA)))
    assert complete_template_spec.main([str(spec), "--metadata-file", str(ROOT / "metadata-streaming.json")]) == 0
    text = spec.read_text()
    assert (
        text
        == json.dumps(json.loads(text), sort_keys=True, indent=4, separators=(",", ": "), ensure_ascii=False) + "\n"
    )
    assert json.loads(text)["metadata"]["defaultStreamingMode"] == "EXACTLY_ONCE"


def test_a_spec_without_metadata_is_refused():
    with pytest.raises(SpecError, match="no metadata"):
        complete({"image": "r/i:t"}, STREAMING_METADATA)


@pytest.mark.emulators
def test_the_build_publishes_a_streaming_spec_with_its_streaming_modes(
    tmp_path, dataflow_api, gcs_emulator, launch_bucket
):
    """build-streaming-template then complete-streaming-template, as Cloud Build runs them, with the real gcloud
    on the GCS emulator: the spec they leave declares streaming and both modes, and keeps all gcloud wrote."""
    require_tool(GCLOUD is not None, "gcloud is not installed: the build's template steps cannot be run")
    values = build_values(PROJECT_ID=PROJECT, _TEMPLATE_BUCKET=launch_bucket)
    shell = CloudShell(
        tmp_path / "cloudsdk",
        dataflow_api,
        None,
        {"PROJECT": PROJECT, "REGION": REGION, "BUCKET": launch_bucket},
        gcs=gcs_emulator,
    )
    blob = (
        gcs_emulator.client().bucket(launch_bucket).blob("templates/versions/b7d1e0c2/batch-prediction-streaming.json")
    )
    try:
        step = STEPS["build-streaming-template"]
        assert step["entrypoint"] == "gcloud"
        build = shlex.join(["gcloud", *(cloud_build_substitute(arg, values) for arg in step["args"])])
        result = shell.run(build)
        assert result.returncode == 0, build + result.stderr[-2000:]
        written_by_gcloud = json.loads(blob.download_as_text())
        assert written_by_gcloud["metadata"]["parameters"] == STREAMING_METADATA["parameters"]

        result = shell.run(cloud_build_substitute(script("complete-streaming-template"), values))
        assert result.returncode == 0, result.stdout + result.stderr[-2000:]
        published = json.loads(blob.download_as_text())
    finally:
        if blob.exists():
            blob.delete()
        shell.close()
    metadata = published["metadata"]
    assert {name: metadata.get(name) for name in DROPPED_BY_GCLOUD} == {
        "streaming": True,
        "supportsAtLeastOnce": True,
        "supportsExactlyOnce": True,
        "defaultStreamingMode": "EXACTLY_ONCE",
    }
    assert published == complete(written_by_gcloud, STREAMING_METADATA)  # all else as gcloud wrote it
    assert published["image"] == f"us-central1-docker.pkg.dev/{PROJECT}/dataflow/batch-prediction:b7d1e0c2"
