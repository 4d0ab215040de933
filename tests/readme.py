"""The README's shell commands, read from the README itself so that tests and documentation cannot drift."""

from __future__ import annotations

import re

from tests.conftest import ROOT

README = ROOT / "README.md"
_SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.M | re.S)


def shell_commands(text: str | None = None) -> list[str]:
    """Every command of every sh block, continuation lines (a trailing backslash) joined."""
    text = README.read_text() if text is None else text
    commands = []
    for block in _SHELL_BLOCK.findall(text):
        for command in re.sub(r"\\\n\s*", "", block).splitlines():
            command = command.strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def commands_starting_with(prefix: str, text: str | None = None) -> list[str]:
    return [command for command in shell_commands(text) if command.startswith(prefix)]
