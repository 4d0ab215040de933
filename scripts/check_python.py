"""Refuses, in one line, a Python the locks were not made for: they pin CPython 3.11 wheels for Linux x86-64.

Run by `make` before it creates `.venv`, so that a wrong interpreter fails there and not halfway through
installing hundreds of pinned wheels.
"""

from __future__ import annotations

import platform
import sys

WANTED = ((3, 11), "linux", "x86_64")


def main() -> int:
    found = (sys.version_info[:2], sys.platform, platform.machine())
    if found == WANTED:
        return 0
    print(
        f"error: {sys.executable} is Python {platform.python_version()} on {sys.platform} {platform.machine()}; "
        "the locks are for Python 3.11 on Linux x86-64: run make with PYTHON=/path/to/python3.11",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
