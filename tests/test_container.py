"""The Flex Template image, checked offline: the Dockerfile's contract for both variants (cpu and gpu,
the build arg TEMPLATE_VARIANT), the two locks, and .dockerignore. cloudbuild.yaml, and the image
check it runs inside the built image, are tests/test_cloudbuild.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.conftest import ROOT
from tests.image_layout import build_context_copies, instructions, substitute
from tests.test_supply_chain import locked

INSTRUCTIONS = instructions()
# The lock each variant installs (Dockerfile: TEMPLATE_VARIANT).
LOCKS = {"cpu": "template/requirements.txt", "gpu": "template/requirements-gpu.txt"}
VARIANTS = list(LOCKS)


def built(variant: str) -> DockerfileParser:
    """The Dockerfile as `docker build --build-arg=TEMPLATE_VARIANT=<variant>` reads it."""
    return DockerfileParser(str(ROOT / "Dockerfile"), build_args={"TEMPLATE_VARIANT": variant})


def substitute_for(variant: str, value: str) -> str:
    """An instruction with every ${ARG} replaced as that variant's build does."""
    for name, arg in built(variant).args.items():
        value = value.replace(f"${{{name}}}", arg)
    return substitute(value)


def stages() -> list[str]:
    return [value for instruction, value in INSTRUCTIONS if instruction == "FROM"]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_image_for_launcher_and_workers_on_the_documented_bases(variant):
    beam_stage, launcher_stage, final_stage = (substitute_for(variant, stage) for stage in stages())
    assert beam_stage == f"apache/beam_python3.11_sdk:{locked(LOCKS[variant])['apache-beam'][0]} AS beam_sdk"
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


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_lock_is_installed_with_hashes_and_checked(variant):
    runs = substitute_for(variant, " ".join(value for instruction, value in INSTRUCTIONS if instruction == "RUN"))
    installs = re.findall(r"pip install --no-cache-dir --require-hashes --no-deps -r (\S+)", runs)
    image_files = {destination: source for source, destination in build_context_copies()}
    assert [image_files.get(path) for path in installs] == [LOCKS[variant]]
    assert "pip check" in runs


def test_an_unknown_variant_fails_the_build_for_want_of_a_lock():
    runs = substitute_for("tpu", " ".join(value for instruction, value in INSTRUCTIONS if instruction == "RUN"))
    (install,) = re.findall(r"--no-deps -r (\S+)", runs)
    assert install == "/template/locks/tpu.txt"
    assert install not in {destination for _, destination in build_context_copies()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_launcher_environment_points_at_files_the_image_contains(variant):
    env = built(variant).envs
    copies = build_context_copies()
    image_files = {destination: source for source, destination in copies}
    assert env["TEMPLATE_VARIANT"] == variant
    assert env["FLEX_TEMPLATE_PYTHON_PY_FILE"] == "/template/main.py"
    assert (ROOT / image_files[env["FLEX_TEMPLATE_PYTHON_PY_FILE"]]).is_file()
    assert (ROOT / image_files["/template/pipeline"] / "__init__.py").is_file()
    assert env["PYTHONPATH"] == "/template"
    # No requirements or setup file to stage at launch: the packages are in the image.
    assert not {"FLEX_TEMPLATE_PYTHON_REQUIREMENTS_FILE", "FLEX_TEMPLATE_PYTHON_SETUP_FILE"} & set(env)
    assert "TEMPLATE_IMAGE" in env
    # Where a GPU is attached: Dataflow's driver mount, and SDK processes sharing the GPU's memory.
    assert env["LD_LIBRARY_PATH"].split(":")[0] == "/usr/local/nvidia/lib64"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_dockerignore_sends_what_copy_needs_and_nothing_heavy():
    from docker.utils.build import exclude_paths  # Docker's own .dockerignore rules

    patterns = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if not line.startswith("#")]
    sent = exclude_paths(str(ROOT), patterns)  # despite its name: the paths that are sent
    for source, _ in build_context_copies():
        assert source in sent, f"{source} is excluded from the build context"
    assert "template/pipeline/data/seed_lines.py" in sent and "template/pipeline/job/graph.py" in sent
    assert not [path for path in sent if path.startswith(("samples/", ".venv/", "build/", "tests/", ".git/"))]
    assert not [path for path in sent if "__pycache__" in path]


def test_the_gpu_lock_is_the_cpu_lock_plus_tensorflows_cuda_wheels():
    """Same packages at the same versions and hashes; what the GPU image adds is NVIDIA's CUDA wheels only."""
    cpu, gpu = locked(LOCKS["cpu"]), locked(LOCKS["gpu"])
    assert {name: gpu[name] for name in cpu} == cpu
    added = set(gpu) - set(cpu)
    assert added and all(name.startswith("nvidia-") for name in added), added
    for name, (version, hashes) in gpu.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version) and hashes, name
    direct = (ROOT / "template/requirements-gpu.in").read_text().splitlines()
    assert {"-c requirements.txt", "-r requirements.in", "tensorflow[and-cuda]==2.21.0"} <= set(direct)
    assert locked(LOCKS["gpu"])["tensorflow"][0] == "2.21.0"


def test_make_lock_resolves_the_gpu_lock_like_the_others_and_after_the_cpu_lock():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nlock:") :].split("\n\n", 1)[0].replace("\\\n", " ")
    commands = [line.strip() for line in recipe.strip().splitlines()[1:]]
    outputs = [re.search(r"-o (\S+)", command).group(1) for command in commands]
    assert outputs.index("template/requirements.txt") < outputs.index("template/requirements-gpu.txt")
    for command in commands:
        assert command.startswith(
            "uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes"
        )
