"""What gets installed is exactly what the locks say, and no code path runs untrusted code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LOCKS = ("template/requirements.txt", "tests/requirements.txt")
REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\$")


def locked(lock: str) -> dict[str, tuple[str, list[str]]]:
    """{package: (version, hashes)} of a pip-compile/uv lock."""
    packages: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (ROOT / lock).read_text().splitlines():
        if match := REQUIREMENT.match(line):
            current = match.group(1).lower()
            packages[current] = (match.group(2), [])
        elif line.strip().startswith("--hash=sha256:") and current:
            packages[current][1].append(line.strip())
        elif line.strip() and not line.lstrip().startswith("#"):
            assert line.startswith("    "), f"{lock}: unpinned or unexpected line {line!r}"
    return packages


@pytest.mark.parametrize("lock", LOCKS)
def test_every_package_is_pinned_with_hashes(lock):
    packages = locked(lock)
    assert packages
    for name, (version, hashes) in packages.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"{name}=={version}"
        assert hashes, f"{name} has no hash"


def test_direct_dependencies_are_in_the_runtime_lock():
    runtime = locked("template/requirements.txt")
    for line in (ROOT / "template/requirements.in").read_text().splitlines():
        name = re.split(r"[\[=<>;\s]", line.strip(), maxsplit=1)[0].lower()
        if name and not name.startswith("#"):
            assert name in runtime, f"{name} is missing from template/requirements.txt"
    assert {"apache-beam", "tensorflow", "numpy", "google-cloud-storage"} <= set(runtime)


def test_the_two_locks_agree_on_shared_packages():
    runtime, tools = locked("template/requirements.txt"), locked("tests/requirements.txt")
    disagreements = {
        name: (runtime[name][0], tools[name][0])
        for name in runtime.keys() & tools.keys()
        if runtime[name][0] != tools[name][0]
    }
    assert not disagreements


def test_installed_environment_is_consistent():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_never_unpickles_evaluates_or_executes_strings():
    """Models and records are data: no pickle, eval, exec or unsafe deserialisation in the product."""
    forbidden_calls = {"eval", "exec", "compile", "__import__"}
    forbidden_modules = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve"}
    for path in [ROOT / "template/main.py", *(ROOT / "template/pipeline").glob("*.py")]:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in forbidden_calls, f"{path.name}:{node.lineno} calls {node.func.id}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = {alias.name.split(".")[0] for alias in node.names} | {
                    (getattr(node, "module", "") or "").split(".")[0]
                }
                assert not names & forbidden_modules, f"{path.name}:{node.lineno} imports {names & forbidden_modules}"
            if isinstance(node, ast.keyword) and node.arg == "safe_mode":
                assert isinstance(node.value, ast.Constant) and node.value.value is True, f"{path.name}:{node.lineno}"
