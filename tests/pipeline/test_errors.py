"""One-line errors: the first line of a message, cut short, never empty; a damaged file's message."""

from __future__ import annotations

import pytest

from pipeline.errors import DamagedInput, LaunchError, ModelBroken, ModelError, NoGpuError, OutputMismatch, first_line


def test_first_line_keeps_only_the_first_line():
    assert first_line(ValueError("model not found\nTraceback (most recent call last):\n  ...")) == "model not found"


def test_first_line_skips_leading_blank_lines_and_spaces():
    assert first_line(RuntimeError("\n\n   disk full\nmore")) == "disk full"


def test_first_line_cuts_a_long_line_to_300_characters():
    assert first_line(ValueError("x" * 1000)) == "x" * 300
    assert first_line(ValueError("y" * 300)) == "y" * 300


@pytest.mark.parametrize("message", ["", "   ", "\n\t\n"])
def test_first_line_of_an_empty_message_is_the_errors_type(message):
    """`raise TimeoutError()` says nothing: its type is the best one line there is."""
    assert first_line(TimeoutError(message)) == "TimeoutError"


def test_first_line_of_an_error_without_arguments_is_its_type():
    assert first_line(NoGpuError()) == "NoGpuError"


def test_first_line_uses_the_errors_str():
    """KeyError's str quotes its key; first_line reports what str() says."""
    assert first_line(KeyError("image")) == "'image'"


def test_damaged_input_says_where_and_how_much_was_read():
    error = DamagedInput("gs://b/in.txt.gz", "truncated_input", 1234567, "compressed file ended early", 89012345)
    assert str(error) == (
        "gs://b/in.txt.gz: compressed file ended early (at or after compressed byte 1,234,567, "
        "89,012,345 bytes decompressed before it); the rest of the file was not read"
    )
    assert (error.path, error.reason, error.offset, error.decoded) == (
        "gs://b/in.txt.gz",
        "truncated_input",
        1234567,
        89012345,
    )


def test_damaged_input_message_is_one_line_for_launch_errors():
    error = DamagedInput("in.gz", "corrupt_input", 0, "invalid block type", 0)
    assert first_line(error) == str(error)
    assert "at or after compressed byte 0, 0 bytes decompressed" in str(error)


def test_model_errors_are_value_errors_and_broken_models_runtime_errors():
    """Callers catch these by their base classes: a model's problems as ValueError, a stop as RuntimeError."""
    assert issubclass(ModelError, ValueError)
    assert issubclass(OutputMismatch, ValueError)
    assert issubclass(ModelBroken, RuntimeError)
    assert issubclass(NoGpuError, RuntimeError)
    assert not issubclass(LaunchError, (ValueError, RuntimeError))
