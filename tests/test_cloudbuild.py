"""cloudbuild.yaml as CI: nothing is published that has not run the sample job inside the image.

The build's steps, their order, the one tag every image reference carries, the versioned template spec,
and the in-image check: the very command the build runs in the image (scripts/check_image.py) is
run here with the project's venv, against the image's layout rebuilt from the Dockerfile. The build's
small shell steps run here too, with Cloud Build's substitutions applied and fakes for docker and gcloud.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.emulators import pubsub_emulator_command
from tests.image_layout import DOCKERFILE, build_image_root
from tests.readme import commands_starting_with
from tests.tools import BQ, GCLOUD, in_ci, require_tool

CLOUDBUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
STEPS = {step["id"]: step for step in CLOUDBUILD["steps"]}
ORDER = [step["id"] for step in CLOUDBUILD["steps"]]
SUBSTITUTIONS = CLOUDBUILD["substitutions"]
REPOSITORY = "${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}/${_IMAGE}"
IMAGE = f"{REPOSITORY}:${{_TAG}}"
VERSIONED_SPEC = "gs://${_TEMPLATE_BUCKET}/templates/versions/${_TAG}/${_IMAGE}.json"
VERSIONED_STREAMING_SPEC = "gs://${_TEMPLATE_BUCKET}/templates/versions/${_TAG}/${_IMAGE}-streaming.json"
CHECK_SCRIPT = "/workspace/scripts/check_image.py"


def script(step_id: str) -> str:
    """The bash script of a `bash -c` step."""
    step = STEPS[step_id]
    assert step["entrypoint"] == "bash" and step["args"][0] == "-c", step
    return step["args"][1]


def cloud_build_substitute(text: str, values: dict[str, str]) -> str:
    """What Cloud Build makes of a step's text: $NAME and ${NAME} replaced, $$ left as one $.
    A reference to an undefined substitution fails, as it fails a build."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(2)
        assert name in values, f"${name} is not a substitution"
        return values[name]

    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", replace, text)


def build_values(**changes: str) -> dict[str, str]:
    values = {"PROJECT_ID": "my-project", "BUILD_ID": "b7d1e0c2", **SUBSTITUTIONS, **changes}
    for name in ("_TAG", "_TEMPLATE_BUCKET"):  # defaults that name built-ins (dynamic substitutions)
        values[name] = cloud_build_substitute(values[name], values)
    return values


def run_step_script(tmp_path: Path, step_id: str, **changes: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Runs a step's bash script with fake docker and gcloud that log their arguments."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    log.write_text("")
    for tool in ("docker", "gcloud"):
        fake = bin_dir / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        fake.chmod(0o755)
    result = subprocess.run(
        ["bash", "-c", cloud_build_substitute(script(step_id), build_values(**changes))],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, log.read_text().splitlines()


def test_cloudbuild_passes_the_cloud_build_schema():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.cloudbuild",
            str(ROOT / "cloudbuild.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_nothing_is_pushed_or_published_before_the_tests_and_the_in_image_check_pass():
    assert ORDER == [
        "check-substitutions",
        "test",
        "build-image",
        "check-image",
        "push-image",
        "build-template",
        "build-streaming-template",
        "complete-streaming-template",
        "smoke-test",
        "publish-template",
        "push-moving-tag",
    ]
    # Without waitFor, each step waits for every step before it, and a failed step ends the build.
    assert not [step for step in CLOUDBUILD["steps"] if "waitFor" in step]
    before_check = yaml.safe_dump(CLOUDBUILD["steps"][: ORDER.index("check-image") + 1])
    assert " push" not in before_check and "gs://" not in before_check


def the_test_steps_commands() -> list[str]:
    """The test step's commands, one a line: continuation lines joined, comments and blank lines left out."""
    text = script("test").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [" ".join(re.sub(r"\s#.*$", "", line).split()) for line in lines if line and not line.startswith("#")]


def the_test_steps_packages() -> set[str]:
    (install,) = [command for command in the_test_steps_commands() if command.startswith("apt-get install ")]
    return {word for word in install.split()[2:] if not word.startswith("-")}


def test_the_tests_are_the_projects_own_in_python_311_with_every_tool_and_fail_without_one(monkeypatch):
    """make test in CPython 3.11 (the locks'), with the Google Cloud CLI, its Pub/Sub emulator and Java: what the
    streaming tests and the docs' gcloud and bq commands need; CI=true makes a missing one fail, not skip."""
    step = STEPS["test"]
    assert step["name"] == "python:3.11-trixie"  # Debian 13: a JDK the emulator's package takes (21 or later)
    assert "CI=true" in step["env"]
    monkeypatch.setenv("CI", "true")
    assert in_ci()
    commands = the_test_steps_commands()
    assert commands[0] == "set -euo pipefail" and commands[-1] == "bash .ci/run"
    ci_run = (ROOT / ".ci/run").read_text()
    assert "make test" in ci_run and 'export CI="${CI:-true}"' in ci_run  # strict wherever .ci/run runs
    assert {"google-cloud-cli", "google-cloud-cli-pubsub-emulator"} <= the_test_steps_packages()
    google_apt = "https://packages.cloud.google.com/apt cloud-sdk main"
    assert any(command.startswith('echo "deb [signed-by=') and google_apt in command for command in commands)
    assert {"gcloud version", "java -version"} <= set(commands)  # the versions that ran, in the build's log
    result = subprocess.run(["bash", "-n", "-c", script("test")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_test_step_installs_the_browser_the_reports_test_opens():
    """Debian's Chromium, and a font for the page's text: tests/test_report_browser.py opens the run report in it."""
    assert {"chromium", "fonts-liberation"} <= the_test_steps_packages()
    assert "chromium --version" in the_test_steps_commands()  # the version that ran, in the build's log


def run_ci_entry(tmp_path: Path, *, root: bool = True, apt_works: bool = True, chromium: bool = False):
    """.ci/run as written, in a copy of its folder, with fakes of make, apt-get and id, and chromium or not."""
    (tmp_path / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    log.write_text("")
    fakes = {
        "make": f'echo "make $*" >> "{log}"',
        "apt-get": f'echo "apt-get $*" >> "{log}"; exit {0 if apt_works else 100}',
        "id": f"echo {0 if root else 1000}",
        **({"chromium": "exit 0"} if chromium else {}),
    }
    for tool, body in fakes.items():
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    result = subprocess.run(
        ["/bin/bash", str(tmp_path / ".ci" / "run")], env={"PATH": str(bin_dir)}, capture_output=True, text=True
    )
    return result, log.read_text().splitlines()


def test_ci_installs_chromium_where_it_is_missing_and_goes_on_where_it_cannot(tmp_path):
    result, calls = run_ci_entry(tmp_path / "missing")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert calls[0] == "apt-get update -qq" and calls[-1] == "make test"
    assert calls[1].startswith("apt-get install -qqy --no-install-recommends") and "chromium" in calls[1].split()
    result, calls = run_ci_entry(tmp_path / "no-apt", apt_works=False)  # offline, or no Debian repository
    assert result.returncode == 0 and calls[-1] == "make test"  # the browser's test then fails, saying why
    assert result.stderr == "chromium could not be installed\n"
    for case, changes in (("present", {"chromium": True}), ("not-root", {"root": False})):
        result, calls = run_ci_entry(tmp_path / case, **changes)
        assert result.returncode == 0 and calls == ["make test"], (case, calls, result.stderr)


def test_the_test_step_installs_the_packages_that_give_the_tests_their_tools_here():
    """The Debian packages that hold gcloud, bq and the Pub/Sub emulator on this machine are the ones the step
    installs (a retired name such as google-cloud-sdk would fail the build), and the emulator's package brings a
    JDK with it (the step installs none by name)."""
    tools = [GCLOUD, BQ, *(pubsub_emulator_command() or [None])]
    require_tool(all(tools), "gcloud, bq or the Pub/Sub emulator and its Java is not installed here")
    if shutil.which("dpkg") is None:
        pytest.skip("no dpkg here: the Google Cloud CLI is not installed from Debian packages")
    owners = subprocess.run(
        ["dpkg", "-S", *(str(Path(tool).resolve()) for tool in tools)], capture_output=True, text=True
    )
    if owners.returncode != 0:
        pytest.skip(f"the Google Cloud CLI here is not installed from Debian packages: {owners.stderr.strip()}")
    assert {line.split(":")[0] for line in owners.stdout.splitlines()} <= the_test_steps_packages()
    emulator = subprocess.run(
        ["dpkg-query", "-W", "-f=${Depends}", "google-cloud-cli-pubsub-emulator"], capture_output=True, text=True
    )
    assert re.search(r"openjdk-\d+-jdk", emulator.stdout), emulator.stdout + emulator.stderr


def test_every_image_reference_carries_the_builds_tag():
    text = (ROOT / "cloudbuild.yaml").read_text()
    references = re.findall(r"\$\{_REGION\}-docker\.pkg\.dev/[^\s\"']+", text)
    assert references
    moving = f"{REPOSITORY}:${{_MOVING_TAG}}"
    assert set(references) == {IMAGE, moving}
    assert moving not in yaml.safe_dump([step for step in CLOUDBUILD["steps"] if step["id"] != "push-moving-tag"])
    assert SUBSTITUTIONS["_MOVING_TAG"] == ""  # a moving tag only when asked for


def test_the_image_built_is_the_one_checked_pushed_registered_and_named_in_the_template():
    build = STEPS["build-image"]["args"]
    assert build[0] == "build" and build[-1] == "."
    assert {f"--tag={IMAGE}", f"--build-arg=TEMPLATE_IMAGE={IMAGE}", "--build-arg=TEMPLATE_VARIANT=${_VARIANT}"} <= set(
        build
    )
    assert IMAGE in STEPS["check-image"]["args"]
    assert STEPS["push-image"]["args"] == ["push", IMAGE]
    template_args = STEPS["build-template"]["args"]
    assert template_args[:4] == ["dataflow", "flex-template", "build", VERSIONED_SPEC]
    assert {f"--image={IMAGE}", "--sdk-language=PYTHON", "--metadata-file=metadata.json"} <= set(template_args)
    streaming_args = STEPS["build-streaming-template"]["args"]
    assert streaming_args[:4] == ["dataflow", "flex-template", "build", VERSIONED_STREAMING_SPEC]
    assert {f"--image={IMAGE}", "--sdk-language=PYTHON", "--metadata-file=metadata-streaming.json"} <= set(
        streaming_args
    )
    assert CLOUDBUILD["images"] == [IMAGE]


def test_a_versioned_spec_is_smoke_tested_then_published_where_launches_look(tmp_path):
    assert f"--template-file-gcs-location={VERSIONED_SPEC}" in script("smoke-test")
    result, calls = run_step_script(tmp_path, "publish-template")
    assert result.returncode == 0, result.stderr
    versions = "gs://my-project-dataflow/templates/versions/b7d1e0c2"
    assert calls == [
        f"gcloud storage cp {versions}/batch-prediction.json gs://my-project-dataflow/templates/batch-prediction.json",
        f"gcloud storage cp {versions}/batch-prediction-streaming.json "
        "gs://my-project-dataflow/templates/streaming-prediction.json",
    ]


def test_images_get_an_immutable_tag_by_default():
    """A moving tag (latest) would let a later build change what a published template's workers pull."""
    assert SUBSTITUTIONS["_TAG"] == "${BUILD_ID}"
    # Substitution defaults that name built-ins (PROJECT_ID, BUILD_ID) need dynamic substitutions under
    # `gcloud builds submit` (triggers always have them).
    assert CLOUDBUILD["options"]["dynamicSubstitutions"] is True


def test_every_substitution_is_documented_in_the_deploy_docs():
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    for name in SUBSTITUTIONS:
        assert f"| `{name}` |" in deploy, f"{name} has no row in docs/deploy.md's substitution table"


def test_every_substitution_the_steps_use_is_defined():
    text = yaml.safe_dump(CLOUDBUILD["steps"]) + yaml.safe_dump(CLOUDBUILD["images"])
    used = set(re.findall(r"(?<!\$)\$\{?(_\w+)", text))
    assert used == set(SUBSTITUTIONS)  # Cloud Build refuses both an undefined and an unused one


# The in-image check: the same script, the same arguments, here and in the image.


def in_image_command() -> list[str]:
    """The command check-image runs in the image: what follows the image in `docker run`."""
    args = STEPS["check-image"]["args"]
    return args[args.index(IMAGE) + 1 :]


def test_the_in_image_check_runs_the_repositorys_script_with_the_images_python():
    args = STEPS["check-image"]["args"]
    assert STEPS["check-image"]["name"] == "gcr.io/cloud-builders/docker"
    options = args[1 : args.index(IMAGE)]
    assert args[0] == "run"
    assert {"--rm", "--entrypoint=python", "--network=none", "--volume=/workspace:/workspace:ro"} == set(options)
    command = in_image_command()
    assert command[0] == CHECK_SCRIPT and (ROOT / CHECK_SCRIPT.removeprefix("/workspace/")).is_file()
    assert f"--main={DOCKERFILE.envs['FLEX_TEMPLATE_PYTHON_PY_FILE']}" in command
    assert "--variant=${_VARIANT}" in command


def local_command(image) -> list[str]:
    """The in-image command for this machine: /workspace is the repository, /template the image's root."""
    values = build_values()
    command = []
    for argument in in_image_command():
        argument = cloud_build_substitute(argument, values)
        argument = argument.replace("/workspace/", f"{ROOT}/").replace("=/template/", f"={image.workdir}/")
        command.append(argument)
    return [sys.executable, *command]


@pytest.mark.slow
def test_the_in_image_check_passes_here_as_in_the_image(tmp_path):
    """The 10,000-record sample job, the help text, a launch error and the held-out accuracy, with the
    Python of the project's venv (installed from the same lock as the image) and the image's layout."""
    image = build_image_root(tmp_path / "image", {"TEMPLATE_IMAGE": "us-central1-docker.pkg.dev/p/r/i:t"})
    env = {**image.env, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        local_command(image), cwd=image.workdir, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    verdicts = [line for line in result.stdout.splitlines() if line.startswith(("ok ", "FAIL "))]
    assert [line.split(":")[0].split(None, 1) for line in verdicts] == [
        ["ok", "variant"],
        ["ok", "help"],
        ["ok", "launch error"],
        ["ok", "sample job"],
        ["ok", "accuracy"],
    ]
    assert "10,000 records read, 10,000 predictions written, 0 dead letters" in result.stdout
    assert re.search(r"Accuracy on keys 8000\.\.9999: 99\.\d\d% \(1,9\d\d of 2,000 correct; 0 labelled", result.stdout)
    assert result.stdout.rstrip().endswith("image check passed")


def test_the_in_image_check_fails_when_main_does_not_do_its_job(tmp_path):
    """A main.py that exits 0 and does nothing must not pass: every check is a real check."""
    fake_main = tmp_path / "template" / "main.py"
    fake_main.parent.mkdir()
    fake_main.write_text("print('usage: main.py')\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/check_image.py"), f"--main={fake_main}", "--variant=gpu"],
        env={"PATH": "/usr/bin:/bin", "TEMPLATE_VARIANT": "cpu", "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == ["FAIL  variant", "FAIL  help", "FAIL  launch error", "FAIL  sample job", "FAIL  accuracy"]


# The small shell steps, run with Cloud Build's substitutions.


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        ({}, True),
        (
            {
                "_VARIANT": "gpu",
                "_IMAGE": "batch-prediction-gpu",
                "_TEMPLATE_PATH": "templates/batch-prediction-gpu.json",
                "_STREAMING_TEMPLATE_PATH": "templates/streaming-prediction-gpu.json",
            },
            True,
        ),
        (
            {
                "_VARIANT": "gpu",
                "_IMAGE": "batch-prediction-gpu",
                "_TEMPLATE_PATH": "templates/batch-prediction-gpu.json",
            },
            False,  # would replace the CPU streaming template
        ),
        ({"_VARIANT": "gpu"}, False),  # would replace the CPU template
        ({"_VARIANT": "gpu", "_IMAGE": "batch-prediction-gpu"}, False),
        ({"_VARIANT": "tpu"}, False),
    ],
)
def test_a_build_refuses_substitutions_that_would_publish_the_wrong_thing(tmp_path, changes, accepted):
    result, calls = run_step_script(tmp_path, "check-substitutions", **changes)
    assert (result.returncode == 0) is accepted, result.stdout + result.stderr
    assert calls == []


DOCS_BUILDS = commands_starting_with("gcloud builds submit") + commands_starting_with("gcloud builds triggers create")
DOCS_VARIABLES = {"$PROJECT": "my-project", "$REGION": "us-central1", "$REPOSITORY": "dataflow", "$BUCKET": "my-bucket"}


def docs_substitutions(command: str) -> dict[str, str]:
    """The `--substitutions` a docs' build or trigger command passes, its shell variables given values."""
    (given,) = re.findall(r"--substitutions[= ]\"?([^\" ]+)", command)
    for variable, value in DOCS_VARIABLES.items():
        given = given.replace(variable, value)
    return dict(pair.split("=", 1) for pair in given.replace("\\$", "$").split(","))


@pytest.mark.parametrize("command", DOCS_BUILDS, ids=lambda command: command.split("--substitutions")[1][:60])
def test_each_build_in_the_docs_passes_the_builds_own_substitution_check(tmp_path, command):
    """The builds need a real project; what they pass to cloudbuild.yaml is checked here."""
    substitutions = docs_substitutions(command)
    assert set(substitutions) <= set(SUBSTITUTIONS), substitutions
    trigger_values = {"SHORT_SHA": "4f2a9c1"}  # what a trigger adds to the built-ins
    result, calls = run_step_script(tmp_path, "check-substitutions", **substitutions, **trigger_values)
    assert result.returncode == 0 and calls == [], result.stdout + result.stderr


def test_the_moving_tag_is_pushed_only_when_asked_for(tmp_path):
    result, calls = run_step_script(tmp_path, "push-moving-tag")
    assert result.returncode == 0 and calls == []
    result, calls = run_step_script(tmp_path, "push-moving-tag", _MOVING_TAG="latest")
    image = "us-central1-docker.pkg.dev/my-project/dataflow/batch-prediction"
    assert result.returncode == 0, result.stderr
    assert calls == [f"docker tag {image}:b7d1e0c2 {image}:latest", f"docker push {image}:latest"]


def test_the_smoke_test_launches_the_versioned_spec_only_when_asked_for(tmp_path):
    result, calls = run_step_script(tmp_path, "smoke-test")
    assert result.returncode == 0 and calls == []
    result, calls = run_step_script(tmp_path, "smoke-test", _SMOKE_TEST="true")
    assert result.returncode == 0, result.stderr
    (call,) = calls
    assert call.startswith("gcloud dataflow flex-template run batch-prediction-smoke-b7d1e0c2 ")
    assert (
        "--template-file-gcs-location=gs://my-project-dataflow/templates/versions/b7d1e0c2/batch-prediction.json"
        in call
    )
