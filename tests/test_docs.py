"""Every shell block of the README and docs/*.md says who runs it, and means it.

A block is preceded by one of two comments:
* `<!-- runs in: tests/test_x.py (how) -->`: that test module reads the block's commands from the doc
  (tests/readme.py records what each module reads) and runs them against the emulators, the fake APIs
  and the real gcloud;
* `<!-- needs a real project: why -->`: it can only run in a Google Cloud project.
Each block's test id says which (`pytest -v tests/test_docs.py`). Every block must also be valid bash,
and the docs use one set of shell variables, all set by the README's quickstart.
"""

from __future__ import annotations

import importlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.readme import DOCS, HANDED_OUT, README, SHELL_BLOCK, block_commands

RUNS_IN = "runs in"
REAL_PROJECT = "needs a real project"
_MARKED_BLOCK = re.compile(
    r"(?:<!-- (runs in|needs a real project): (.+?) -->\n)?```(?:sh|bash|shell)\n(.*?)^```", re.M | re.S
)
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
LOOP_VARIABLES = {"role"}  # the README's `for role in ...` loops


@dataclass(frozen=True)
class ShellBlock:
    doc: Path
    line: int
    kind: str | None
    detail: str
    text: str

    @property
    def test_module(self) -> str:
        return self.detail.split()[0]

    def __str__(self) -> str:
        verdict = f"{self.kind} {self.test_module}" if self.kind == RUNS_IN else (self.kind or "UNMARKED")
        return f"{self.doc.relative_to(ROOT)}:{self.line} {verdict}"


def shell_blocks() -> list[ShellBlock]:
    blocks = []
    for doc in DOCS:
        text = doc.read_text()
        for match in _MARKED_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start(3))
            blocks.append(ShellBlock(doc, line, match.group(1), match.group(2) or "", match.group(3)))
    return blocks


BLOCKS = shell_blocks()
RUN_BLOCKS = [block for block in BLOCKS if block.kind == RUNS_IN]


def test_the_marker_pattern_finds_every_shell_block():
    assert len(BLOCKS) == sum(len(SHELL_BLOCK.findall(doc.read_text())) for doc in DOCS) > 10


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_each_shell_block_says_who_runs_it_and_is_valid_bash(block):
    marks = "<!-- runs in: tests/... --> or <!-- needs a real project: why -->"
    assert block.kind in (RUNS_IN, REAL_PROJECT), f"{block}: mark it {marks}"
    assert block.detail.strip(), f"{block}: say how it runs, or why it needs a real project"
    result = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
    assert result.returncode == 0, f"{block}: {result.stderr}"


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=str)
def test_a_block_a_test_runs_is_read_by_that_test(block):
    path = ROOT / block.test_module
    assert path.is_file() and path.parent == ROOT / "tests", f"{block}: no test module {block.test_module}"
    module = importlib.import_module(f"tests.{path.stem}")
    unread = [command for command in block_commands(block.text) if command not in HANDED_OUT[module.__name__]]
    assert unread == [], f"{block}: {block.test_module} does not read these commands from the docs"


def test_the_docs_use_the_readmes_variables_only():
    """Each `$NAME` of a shell block is one the README's quickstart exports (or a loop's own)."""
    exported = set(re.findall(r"^export ([A-Z_]+)=", README.read_text(), re.M))
    assert {"PROJECT", "REGION", "BUCKET", "REPOSITORY", "WORKER_SA", "BUILD_SA"} <= exported, exported
    used = {(block, name) for block in BLOCKS for name in _VARIABLE.findall(block.text.replace("\\$", ""))}
    strays = sorted(f"{block}: ${name}" for block, name in used if name not in exported | LOOP_VARIABLES)
    assert strays == []


def test_bucket_is_a_bucket_name_everywhere():
    """`BUCKET` is a bare name: every use in a command is gs://$BUCKET or a substitution's value."""
    for block in BLOCKS:
        for use in re.finditer(r"(.{0,20})\$BUCKET", block.text):
            assert use.group(1).endswith(("gs://", "_TEMPLATE_BUCKET=")), f"{block}: {use.group(0)}"


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_link_between_the_docs_reaches_a_file_and_heading(doc):
    for target, anchor in re.findall(r"\]\((?!https?:)([^)#]*)(?:#([^)]*))?\)", doc.read_text()):
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.relative_to(ROOT)}: no {target}"
        if anchor:
            assert anchor in heading_anchors(path), f"{doc.relative_to(ROOT)}: no heading #{anchor} in {target or 'it'}"
