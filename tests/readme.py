"""The README's shell commands, read from the README itself so that tests and documentation cannot drift."""

from __future__ import annotations

import re

from tests.conftest import ROOT

README = ROOT / "README.md"
_SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.M | re.S)
_ANY_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)


def section(heading: str, text: str | None = None) -> str:
    """The README's text under `heading` (e.g. '### GPU workers'), up to the next heading of its level or above."""
    text = README.read_text() if text is None else text
    level = heading.split()[0]
    start = text.index(f"\n{heading}\n")
    following = re.compile(rf"^#{{1,{len(level)}}} ", re.M)
    match = following.search(text, start + len(heading) + 2)
    return text[start : match.start() if match else len(text)]


def shell_commands(text: str | None = None, blocks: re.Pattern = _SHELL_BLOCK) -> list[str]:
    """Every command of every sh block, continuation lines (a trailing backslash) joined."""
    text = README.read_text() if text is None else text
    commands = []
    for block in blocks.findall(text):
        for command in re.sub(r"\\\n\s*", "", block).splitlines():
            command = command.strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def commands_starting_with(prefix: str, text: str | None = None) -> list[str]:
    return [command for command in shell_commands(text) if command.startswith(prefix)]


def commands_in_section(heading: str, prefix: str) -> list[str]:
    """The commands starting with `prefix` in any code block under `heading`."""
    return [command for command in shell_commands(section(heading), _ANY_BLOCK) if command.startswith(prefix)]
