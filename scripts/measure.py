"""Running a child process and measuring it: wall time, CPU time and peak memory of that child alone.

The child is reaped with wait4, which reports the resources of that one child (a test process has
other children, the emulators). Used by the launch tests and by `make bench`.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    status: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float
    cpu_s: float  # user + system


def run_measured(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float | None = None
) -> Measured:
    """Runs `argv` to its end (killed after `timeout_s`), its output captured."""
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    streams: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda name=name, pipe=pipe: streams.__setitem__(name, pipe.read()), daemon=True)
        for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for reader in readers:
        reader.start()
    killer = threading.Timer(timeout_s, process.kill) if timeout_s else None
    if killer:
        killer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        if killer:
            killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()

    def decode(name: str) -> str:
        return streams.get(name, b"").decode("utf-8", "replace")

    return Measured(
        process.returncode,
        decode("stdout"),
        decode("stderr"),
        time.monotonic() - started,
        usage.ru_maxrss / 1024,
        usage.ru_utime + usage.ru_stime,
    )
