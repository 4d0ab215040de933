"""The entry point as users meet it: one line and exit status 2 for every launch mistake."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from main import run
from pipeline.launch.parameters import PARAMETERS
from tests.conftest import ROOT, SAMPLE_IMAGES, SAMPLE_MODEL

MAIN = ROOT / "template" / "main.py"


def good_args(tmp_path) -> list[str]:
    return [f"--input={SAMPLE_IMAGES}", f"--output={tmp_path / 'out' / 'predictions'}", f"--model={SAMPLE_MODEL}"]


def replace(args: list[str], **changes: str | None) -> list[str]:
    kept = [arg for arg in args if arg.split("=", 1)[0][2:] not in changes]
    return kept + [f"--{name}={value}" for name, value in changes.items() if value is not None]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"input": None}, "error: --input is required"),
        ({"output": None}, "error: --output is required"),
        ({"model": None}, "error: --model is required"),
        ({"input": "/nonexistent/images*.txt"}, "error: --input=/nonexistent/images*.txt: no file matches"),
        ({"model": "/nonexistent/model"}, "error: --model=/nonexistent/model: nothing exists"),
        ({"source": "parquet"}, "error: --source=parquet: must be one of text, bigquery"),
        ({"sink": "csv"}, "error: --sink=csv: must be one of text, bigquery"),
        ({"batch_size": "0"}, "error: --batch_size=0: must be from 1 to 8192"),
        ({"batch_size": "ten"}, "error: --batch_size=ten: must be a whole number"),
        ({"model_copies": "2"}, "error: --model_copies=2: must be one of auto, per_process, per_vm"),
        ({"query": "SELECT 1"}, "error: --query applies only to source=bigquery"),
        ({"source": "bq", "input": "not a table"}, "error: --input=not a table: not a BigQuery table"),
        ({"sink": "bigquery", "output": "gs://b/x"}, "error: --output=gs://b/x: not a BigQuery table"),
        ({"sink": "bq", "output": "ds.predict"}, "error: --temp_location must be a gs:// folder"),
        (
            {"batchsize": "5"},
            "error: unknown parameter --batchsize: neither the template nor Beam has it; did you mean --batch_size?",
        ),
        ({"output": "proj:mnist.predict"}, "error: --output=proj:mnist.predict: looks like a BigQuery table"),
        ({"dead_letter": "proj:mnist.errors"}, "error: --dead_letter=proj:mnist.errors: looks like a BigQuery table"),
    ],
)
def test_launch_mistakes_are_one_line_and_exit_2(tmp_path, capfd, changes, expected):
    assert run(replace(good_args(tmp_path), **changes)) == 2
    err = capfd.readouterr().err
    assert err.strip().startswith(expected), err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("predictions-*"))


def test_unwritable_output_is_one_line(tmp_path, capfd):
    (tmp_path / "a-file").write_text("a file where the output folder should be")
    target = str(tmp_path / "a-file" / "predictions")  # refused even for root
    assert run(replace(good_args(tmp_path), output=target)) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith(f"error: --output={target}: cannot write there"), err
    assert len(err.splitlines()) == 1


def test_model_that_cannot_take_the_records_is_refused_at_launch(tmp_path, tiny_models, capfd):
    """A 12-wide model over 784-value lines: one line naming both widths, before any work."""
    assert run(replace(good_args(tmp_path), model=str(tiny_models["keras"]))) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith(f"error: --model={tiny_models['keras']}: takes 12 values per record"), err
    assert "the first record of --input has 784" in err and len(err.splitlines()) == 1


def test_dead_letters_cannot_overwrite_the_predictions(tmp_path, capfd):
    output = str(tmp_path / "out" / "predictions")
    assert run(replace(good_args(tmp_path), dead_letter=output + "/")) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith(f"error: --dead_letter={output}/: is the same as --output"), err


def test_a_remote_runner_refuses_local_paths(tmp_path, capfd):
    """On Dataflow a local path is the launcher's or a worker's disk: workers cannot read the
    launcher's files, and what they write is discarded with them. (Each location is checked in
    the launch harness, tests/test_launch.py; here the first of them.)"""
    assert run([*good_args(tmp_path), "--runner=DataflowRunner", "--sdk_container_image=image:1"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith(f"error: --input={SAMPLE_IMAGES}: a local path cannot be read by the workers"), err
    assert err.endswith("give a gs:// path") and len(err.splitlines()) == 1


def test_a_remote_runner_needs_an_image_with_the_template(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("TEMPLATE_IMAGE", raising=False)
    assert run([*good_args(tmp_path), "--runner=DataflowRunner"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith("error: no worker image: this image was built without TEMPLATE_IMAGE"), err
    assert "--sdk_container_image" in err and len(err.splitlines()) == 1


def test_unreadable_input_is_one_line(tmp_path, capfd):
    broken = tmp_path / "images.txt.gz"
    broken.write_bytes(b"this is not gzip data at all")
    assert run(replace(good_args(tmp_path), input=str(broken))) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith(f"error: --input={broken}: cannot read the file"), err
    assert len(err.splitlines()) == 1


def test_a_model_that_cannot_predict_is_refused_at_launch(tmp_path, capfd):
    """A second required input the records cannot feed: found in the signature at launch, not per batch."""
    from tests.model_factories import WIDTH, two_input_saved_model

    model = two_input_saved_model(tmp_path / "two-inputs")
    source = tmp_path / "in.txt"
    source.write_text("1:" + ",".join(["0.5"] * WIDTH) + "\n")
    assert run(replace(good_args(tmp_path), input=str(source), model=str(model))) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith(
        f"error: --model={model}: key:v0,v1,... records feed one input, but the model takes image, scale"
    ), err
    assert "JSON Lines or CSV" in err
    assert len(err.splitlines()) == 1


def test_help_lists_every_parameter():
    result = subprocess.run([sys.executable, str(MAIN), "--help"], capture_output=True, text=True, check=True)
    for parameter in PARAMETERS:
        assert f"--{parameter.name}" in result.stdout


def test_corrupt_model_in_a_fresh_process_is_one_clean_line(tmp_path):
    """TensorFlow is imported on this path: its start-up chatter must not bury the error."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "saved_model.pb").write_bytes(b"garbage")
    result = subprocess.run(
        [sys.executable, str(MAIN), *replace(good_args(tmp_path), model=str(tmp_path / "model"))],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: --model={tmp_path / 'model'}: the SavedModel does not load")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> subprocess.CompletedProcess:
    """The sample job in a fresh process, once for the tests below, with an exit handler registered
    (by sitecustomize, as a module would) that prints a line if the interpreter is torn down."""
    tmp_path = tmp_path_factory.mktemp("sample-run")
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text("import atexit\natexit.register(print, 'interpreter teardown ran')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(probe), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, str(MAIN), *good_args(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def test_a_local_run_prints_nothing_a_user_cannot_act_on(sample_run):
    """stderr holds progress lines at most: no Beam warning about a 'Resource module' (a torch-only
    import Beam couples to it), no TensorFlow start-up chatter."""
    result = sample_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "predictions              10,000" in result.stdout
    noise = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("progress: ")]
    assert noise == []


def test_the_process_ends_with_its_job_not_after_tearing_the_interpreter_down(sample_run):
    """Unloading TensorFlow and Beam at exit kept users waiting after the summary: main.py exits at
    once, so an exit handler registered by a module never runs."""
    result = sample_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.rstrip().splitlines()[-1].startswith("  report at")  # the summary's last line
    assert "interpreter teardown ran" not in result.stdout
