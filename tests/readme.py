"""The shell commands of the README and docs/*.md, read from the docs themselves so that tests and
documentation cannot drift.

Each helper records the commands it hands out, so that tests/test_docs.py can check that every
command of a block marked `<!-- runs in: tests/test_x.py -->` is one that test module reads.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = (README, *sorted((ROOT / "docs").glob("*.md")))
SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.M | re.S)
HANDED_OUT: defaultdict[str, set[str]] = defaultdict(set)  # test module -> the commands it was handed


def all_docs_text() -> str:
    return "\n".join(path.read_text() for path in DOCS)


def block_commands(block: str) -> list[str]:
    """The commands of one code block, continuation lines (a trailing backslash) joined, comments left out."""
    commands = []
    for command in re.sub(r"\\\n\s*", "", block).splitlines():
        command = command.strip()
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def shell_commands(text: str | None = None, blocks: re.Pattern = SHELL_BLOCK) -> list[str]:
    """Every command of every sh block of the docs (or of `text`), in order, each once."""
    text = all_docs_text() if text is None else text
    commands = [command for block in blocks.findall(text) for command in block_commands(block)]
    return list(dict.fromkeys(commands))


def commands_starting_with(prefix: str, text: str | None = None, containing: str = "") -> list[str]:
    """The docs' commands starting with `prefix` (and holding `containing`), recorded as read by the
    calling test module."""
    commands = [command for command in shell_commands(text) if command.startswith(prefix) and containing in command]
    return _read_by_caller(commands)


def doc_path(path: Path) -> str:
    return str(path.relative_to(ROOT))


def block_holding(fragment: str, text: str | None = None) -> list[str]:
    """Every command, in order, of the one sh block holding `fragment`: a block that runs in one shell."""
    text = all_docs_text() if text is None else text
    (block,) = [block for block in SHELL_BLOCK.findall(text) if fragment in block]
    return _read_by_caller(block_commands(block))


def _read_by_caller(commands: list[str]) -> list[str]:
    """Records `commands` as read by the test module that called the helper calling this."""
    HANDED_OUT[sys._getframe(2).f_globals["__name__"]].update(commands)
    return commands
