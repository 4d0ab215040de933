"""The Flex Template packaging, checked offline: Dockerfile, .dockerignore, cloudbuild.yaml, and
main.py run the way the launcher runs it inside the image."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT, SAMPLE_IMAGES, SAMPLE_MODEL
from tests.image_layout import DOCKERFILE, build_context_copies, build_image_root, instructions, substitute

INSTRUCTIONS = instructions()
CLOUDBUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def locked_version(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s\\]+)", (ROOT / "template/requirements.txt").read_text(), re.M)
    assert match, f"{package} is not in the lock"
    return match.group(1)


def stages() -> list[str]:
    return [value for instruction, value in INSTRUCTIONS if instruction == "FROM"]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_image_for_launcher_and_workers_on_the_documented_bases():
    beam_stage, launcher_stage, final_stage = (substitute(stage) for stage in stages())
    assert beam_stage == f"apache/beam_python3.11_sdk:{locked_version('apache-beam')} AS beam_sdk"
    assert launcher_stage.startswith("gcr.io/dataflow-templates-base/python311-template-launcher-base:")
    assert final_stage == "python:3.11-slim"
    copies_from = [value for instruction, value in INSTRUCTIONS if instruction == "COPY" and value.startswith("--from")]
    assert "--from=beam_sdk /opt/apache/beam /opt/apache/beam" in copies_from
    assert any(
        value.startswith("--from=launcher /opt/google/dataflow/python_template_launcher") for value in copies_from
    )
    assert [value for instruction, value in INSTRUCTIONS if instruction == "ENTRYPOINT"] == [
        '["/opt/apache/beam/boot"]'
    ]


def test_the_lock_is_installed_with_hashes_and_checked():
    runs = " ".join(value for instruction, value in INSTRUCTIONS if instruction == "RUN")
    assert "pip install --no-cache-dir --require-hashes --no-deps -r /template/requirements.txt" in substitute(runs)
    assert "pip check" in runs
    assert ("template/requirements.txt", "/template/requirements.txt") in build_context_copies()


def test_launcher_environment_points_at_files_the_image_contains():
    env = DOCKERFILE.envs
    copies = build_context_copies()
    image_files = {destination: source for source, destination in copies}
    assert env["FLEX_TEMPLATE_PYTHON_PY_FILE"] == "/template/main.py"
    assert (ROOT / image_files[env["FLEX_TEMPLATE_PYTHON_PY_FILE"]]).is_file()
    assert (ROOT / image_files["/template/pipeline"] / "__init__.py").is_file()
    assert env["PYTHONPATH"] == "/template"
    # No requirements or setup file to stage at launch: the packages are in the image.
    assert not {"FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE", "FLEX_TEMPLATE_PYTHON_SETUP_FILE"} & set(env)
    assert "TEMPLATE_IMAGE" in env


def test_dockerignore_sends_what_copy_needs_and_nothing_heavy():
    from docker.utils.build import exclude_paths  # Docker's own .dockerignore rules

    patterns = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if not line.startswith("#")]
    sent = exclude_paths(str(ROOT), patterns)  # despite its name: the paths that are sent
    for source, _ in build_context_copies():
        assert source in sent, f"{source} is excluded from the build context"
    assert "template/pipeline/records.py" in sent
    assert not [path for path in sent if path.startswith(("samples/", ".venv/", "build/", "tests/", ".git/"))]
    assert not [path for path in sent if "__pycache__" in path]


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


def test_cloudbuild_builds_pushes_and_registers_the_same_image_with_the_metadata():
    image = "${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}/${_IMAGE}:${_TAG}"
    steps = {step["id"]: step for step in CLOUDBUILD["steps"]}
    assert f"--tag={image}" in steps["build-image"]["args"]
    assert f"--build-arg=TEMPLATE_IMAGE={image}" in steps["build-image"]["args"]
    assert steps["push-image"]["args"] == ["push", image]
    template_args = steps["build-template"]["args"]
    assert template_args[:3] == ["dataflow", "flex-template", "build"]
    assert {f"--image={image}", "--sdk-language=PYTHON", "--metadata-file=metadata.json"} <= set(template_args)
    assert CLOUDBUILD["images"] == [image]


def test_every_substitution_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in CLOUDBUILD["substitutions"]:
        assert f"`{name}`" in readme, f"{name} is not documented in the README"


def test_main_runs_locally_in_the_image_layout(tmp_path):
    """The image's layout and environment, rebuilt in a temporary root; parameters as --name=value;
    a local runner, as the in-image sample run of cloudbuild.yaml uses it (the Dataflow launch
    itself is tests/test_launch.py)."""
    image = build_image_root(tmp_path / "image")
    output = tmp_path / "out" / "predictions"
    parameters = {"input": SAMPLE_IMAGES, "output": output, "model": SAMPLE_MODEL}
    launcher_options = ["--runner=DirectRunner", "--project=test-project", "--region=us-central1", "--job_name=launch"]
    result = subprocess.run(
        [
            sys.executable,
            image.env["FLEX_TEMPLATE_PYTHON_PY_FILE"],
            *[f"--{name}={value}" for name, value in parameters.items()],
            *launcher_options,
        ],
        cwd=image.workdir,
        env=image.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "predictions              10,000" in result.stdout
    lines = [line for path in output.parent.glob("predictions-*.jsonl") for line in path.read_text().splitlines()]
    assert len(lines) == 10_000


def test_images_get_an_immutable_tag_by_default():
    """A moving tag (latest) would let a later build change what a published template's workers pull."""
    assert CLOUDBUILD["substitutions"]["_TAG"] == "${BUILD_ID}"
    # Substitution defaults that name built-ins (PROJECT_ID, BUILD_ID) need dynamic substitutions under
    # `gcloud builds submit` (triggers always have them).
    assert CLOUDBUILD["options"]["dynamicSubstitutions"] is True
