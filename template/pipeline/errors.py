"""Every error the template raises on purpose, in one place: what each means and who sees it.

Launch-time errors become one line and exit status 2 (`LaunchError`, and `ModelError` through
it); job-time errors either become dead letters (`DamagedInput`, a model's own error on a
record) or stop the job in one line (`ModelBroken`, `NoGpuError`); `ModelFault` hands the work back to the
runner to retry, and stops a local run in one line.
"""

from __future__ import annotations


class LaunchError(Exception):
    """A user mistake found before any work starts: reported as one line, exit status 2."""


class ModelError(ValueError):
    """The model cannot be used: the message says what is wrong and what would fix it."""


class OutputMismatch(ValueError):
    """The model's outputs do not match its signature: a missing output, or not one row per instance."""


class ModelBroken(RuntimeError):
    """The model fails on every record it is given: a broken model, not bad records. Stops the job."""


class ModelFault(RuntimeError):
    """The model's runtime or device failed, not a record: the bundle fails so that the runner retries it."""


class OutputRefused(RuntimeError):
    """A sink refused the job's output for good (a batch load refused for a row's content): stops the job
    in one line that names the file and the row."""


class NoGpuError(RuntimeError):
    """A job launched for GPU workers, on a worker where TensorFlow sees none."""


class DamagedInput(Exception):
    """A compressed input file is damaged: why, and where in its compressed bytes."""

    def __init__(self, path: str, reason: str, offset: int, detail: str, decoded: int):
        self.path = path
        self.reason = reason
        self.offset = offset
        self.decoded = decoded
        super().__init__(
            f"{path}: {detail} (at or after compressed byte {offset:,}, {decoded:,} bytes decompressed "
            "before it); the rest of the file was not read"
        )


def first_line(error: BaseException) -> str:
    """The first line of an error's message, short enough for a one-line launch error."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
