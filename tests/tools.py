"""The tools some tests need beside the venv, and what their absence does: a skip here, a failure in CI.

The Google Cloud CLI (`gcloud`, `bq`), its Pub/Sub emulator component and the Java that runs the emulator
are no PyPI packages, so `make test` cannot install them. Where one is missing, the tests that need it
skip, saying which tool and why; where the environment variable CI is set (to anything but an empty
string, 0, false or no), as Cloud Build's test step sets it, they fail with the same words instead. A CI
that lacks a tool is then red, not green with part of the proof never run.

* `requires_tool(present, reason)`: a mark, for a module's `pytestmark` or one test;
* `require_tool(present, reason)`: the same, called in a fixture or a test.

What needs which tool: the docs' `gcloud` commands (tests/test_readme_launches.py, test_readme_quickstart.py,
test_readme_streaming.py, test_gpu_launch.py) and the build's template steps (tests/test_template_spec.py) need
`gcloud`; the `bq` lines (tests/test_seed_commands.py) need `bq`; everything that asks for the
`pubsub_emulator` fixture (tests/emulators.py: the streaming tests, the Pub/Sub checks at launch, the streaming
docs) and the local stream of docs/streaming.md (tests/test_streaming_local.py) needs `gcloud`, its
`pubsub-emulator` component and `java`; the run report seen in a browser (tests/test_report_browser.py) needs
Chromium, the Debian package `chromium`, which .ci/run installs where apt-get can. The project's shared seed
files beside the checkout (`../shared`, the `shared_dir` fixture in tests/conftest.py) are no tool: a clone and
Cloud Build's workspace never have them, so their absence stays a skip, in CI too.
"""

from __future__ import annotations

import os
import shutil

import pytest

GCLOUD = shutil.which("gcloud")
BQ = shutil.which("bq")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

_MARK = "requires_tool"


def in_ci() -> bool:
    """Whether CI is set, as CI services set it (`CI=true`): a missing tool then fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tool(present: bool, reason: str) -> None:
    """Nothing when the tool is present; else a skip with `reason`, or a failure with it where CI is set."""
    if present:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI is set: a missing tool fails the run instead of skipping its tests)", pytrace=False)
    pytest.skip(reason)


def requires_tool(present: bool, reason: str) -> pytest.MarkDecorator:
    """A mark with require_tool's effect, applied before the test's fixtures are set up."""
    return getattr(pytest.mark, _MARK)(present=present, reason=reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{_MARK}(present, reason): skip without the tool, fail where CI is set")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers(_MARK):
        require_tool(mark.kwargs["present"], mark.kwargs["reason"])
