"""Python UDFs: a user's file of functions, run before the model (a record in; a record, several or none
out) and after it (a prediction row in, a row out).

The source travels in the JobConfig (`UdfCode`), read once at launch, so that every worker runs the same
code and none reads storage for it. Each process compiles and runs the file once (a cache keyed by the
source's hash); `compile(source, path)` and the source registered with `linecache` make tracebacks name
the user's file and show its lines, on workers too. What a UDF raises is told as `file:line in function:
Error: message` (a record's dead letter, or a launch error), never a failed job.
"""

from __future__ import annotations

import functools
import hashlib
import linecache
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pipeline.errors import first_line

# The main packages of the template's image, which a UDF may import (it may import nothing else).
IMAGE_PACKAGES = ("numpy", "pyarrow", "tensorflow", "apache_beam", "orjson", "google.cloud")


@dataclass(frozen=True)
class UdfCode:
    """A UDF file as read at launch: where it was, its text, and the functions run before and after the model."""

    path: str
    source: str
    before: str | None = None
    after: str | None = None

    @functools.cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()


class UdfLoadError(Exception):
    """The file does not compile, or running it failed: the message is one line naming the file and line."""

    def __init__(self, message: str, stacktrace: str = ""):
        super().__init__(message)
        self.stacktrace = stacktrace


@dataclass(frozen=True)
class UdfFailure:
    """Why a UDF call gave nothing usable: `file:line in function: Error: message`, and the stack trace."""

    message: str
    stacktrace: str = ""


_LOADED: dict[tuple[str, str], types.ModuleType] = {}
_LOADING = threading.Lock()


def _innermost_in(tb: TracebackType | None, path: str) -> tuple[int, str] | None:
    """(line, function) of the innermost frame of the traceback that runs the file at `path`."""
    found = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            found = (tb.tb_lineno, tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return found


def describe(error: BaseException, path: str, function: str) -> UdfFailure:
    """An exception raised by the UDF in `path` (called as `function`), as `path:line in name: Error: text`,
    with the stack trace from the UDF's own frames down."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != path:  # the caller's frames are not the user's
        tb = tb.tb_next
    place = _innermost_in(tb, path)
    where = f"{path}:{place[0]} in {place[1]}" if place else f"{path} in {function}"
    trace = "".join(traceback.format_exception(type(error), error, tb))
    return UdfFailure(f"{where}: {type(error).__name__}: {first_line(error)}", trace)


def _compile(code: UdfCode) -> types.ModuleType:
    try:
        compiled = compile(code.source, code.path, "exec")
    except SyntaxError as error:
        line = f":{error.lineno}" if error.lineno else ""
        raise UdfLoadError(f"{code.path}{line}: SyntaxError: {error.msg}") from None
    # The lines of the user's file for tracebacks, where the file itself cannot be read (gs://, a worker).
    linecache.cache[code.path] = (len(code.source), None, code.source.splitlines(True), code.path)
    name = f"udf_{code.digest[:16]}"
    module = types.ModuleType(name)
    module.__file__ = code.path
    sys.modules[name] = module  # what dataclasses, pickle and typing look classes up in
    try:
        exec(compiled, module.__dict__)
    except (Exception, SystemExit) as error:
        del sys.modules[name]
        failure = describe(error, code.path, "<module>")
        hint = ""
        if isinstance(error, ImportError):
            hint = f" (a UDF may import what the template's image has: {', '.join(IMAGE_PACKAGES)} and Python's own)"
        raise UdfLoadError(f"running the file failed: {failure.message}{hint}", failure.stacktrace) from None
    return module


def load(code: UdfCode) -> types.ModuleType:
    """The file compiled and run as a module: once per process for the same path and source."""
    key = (code.path, code.digest)
    module = _LOADED.get(key)
    if module is not None:
        return module
    with _LOADING:
        module = _LOADED.get(key)
        if module is None:
            module = _compile(code)
            _LOADED[key] = module
    return module


def function_of(code: UdfCode, name: str) -> Callable[[Any], Any]:
    """The function `name` of the file; a UdfLoadError where it has none, or not a function."""
    module = load(code)
    function = getattr(module, name, None)
    if function is None:
        defined = sorted(
            key
            for key, value in vars(module).items()
            if isinstance(value, types.FunctionType) and value.__module__ == module.__name__
        )
        has = f"; it defines {', '.join(defined)}" if defined else "; it defines no function"
        raise UdfLoadError(f"{code.path} has no function '{name}'{has}")
    if not callable(function):
        raise UdfLoadError(f"{code.path}: '{name}' is a {type(function).__name__}, not a function")
    return function


def materialized(result: Any) -> Any:
    """What a UDF before the model returned, an iterable that is no mapping nor text (a generator, a tuple,
    a map...) as a list, a mapping as a dict; anything else as it is. Iterating runs a generator's body:
    call this where what the UDF raises is caught."""
    if result is None or isinstance(result, (dict, list, str, bytes, bytearray, memoryview)):
        return result
    if isinstance(result, Mapping):
        return dict(result)
    if isinstance(result, Iterable):
        return list(result)
    return result


def excerpt(value: Any) -> str:
    """What a UDF returned, short, for a message: its type and the start of its repr."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:60] + '...'}"
