"""The template image as the Dockerfile describes it, read with dockerfile-parse and rebuilt in a folder.

There is no Docker engine where this is developed, so tests that must run code "as in the image"
rebuild the image's layout from the Dockerfile itself: every `COPY` from the build context into a
temporary root, and every `ENV` with its image paths moved under that root. The Python packages
are the project's venv, installed from the same lock as the image's.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from dockerfile_parse import DockerfileParser

from tests.conftest import ROOT


def parse(path: Path) -> DockerfileParser:
    return DockerfileParser(str(path))


DOCKERFILE = parse(ROOT / "Dockerfile")


def instructions(dockerfile: DockerfileParser = DOCKERFILE) -> list[tuple[str, str]]:
    return [(item["instruction"], item["value"]) for item in dockerfile.structure if item["instruction"] != "COMMENT"]


def arg_defaults(dockerfile: DockerfileParser = DOCKERFILE) -> dict[str, str]:
    return dict(
        value.split("=", 1) for instruction, value in instructions(dockerfile) if instruction == "ARG" and "=" in value
    )


def substitute(value: str, dockerfile: DockerfileParser = DOCKERFILE) -> str:
    """The instruction with every ${ARG} replaced by the ARG's default, as a plain build does."""
    for name, default in arg_defaults(dockerfile).items():
        value = value.replace(f"${{{name}}}", default.strip('"'))
    return value


def build_context_copies(dockerfile: DockerfileParser = DOCKERFILE) -> list[tuple[str, str]]:
    """(source in the repository, destination in the image) of every COPY from the build context."""
    copies = []
    for instruction, value in instructions(dockerfile):
        if instruction == "COPY" and not value.startswith("--from"):
            source, destination = substitute(value, dockerfile).split()
            copies.append((source, destination))
    return copies


@dataclasses.dataclass(frozen=True)
class ImageRoot:
    """The image's files under `root`, its environment with paths moved there, and its WORKDIR."""

    root: Path
    env: dict[str, str]
    workdir: Path

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")


def build_image_root(root: Path, build_args: dict[str, str] | None = None) -> ImageRoot:
    """Copies what the Dockerfile COPYs into `root`; the env is the image's ENV for these build args."""
    for source, destination in build_context_copies():
        target = root / destination.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (ROOT / source).is_dir() else shutil.copyfile)(ROOT / source, target)
    (root / "root").mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(root / "root"), "LANG": "C.UTF-8"}
    built = DockerfileParser(str(ROOT / "Dockerfile"), build_args=build_args or {})
    for name, value in built.envs.items():
        env[name] = str(root / value.lstrip("/")) if value.startswith("/") else value
    return ImageRoot(root, env, root / built.args["WORKDIR"].lstrip("/"))
