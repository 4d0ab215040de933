"""Every private API of Beam, TensorFlow and Keras that the template uses, fenced here, each with the
version it was checked against. `tests/pipeline/test_compat.py` fails loudly when an upgrade of
one of these packages changes what is used here: re-check each entry, then update CHECKED.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from typing import Any, BinaryIO

from apache_beam.io.tfrecordio import _TFRecordUtil
from apache_beam.ml.inference import base as _inference_base

# The installed versions these entries were checked against (package name -> version).
CHECKED = {"apache-beam": "2.77.0", "keras": "3.15.1", "tensorflow": "2.21.0"}


def restore_memory_readings() -> None:
    """Beam 2.77 (`apache_beam.ml.inference.base`) imports `resource` in one try block with an optional
    torch-only module, so without torch it believes `resource` is missing and warns on every model
    load ("Resource module is not available for current platform"). The module is there on every
    platform we run on: hand it back."""
    if getattr(_inference_base, "resource", None) is None:
        _inference_base.resource = resource


def read_tfrecord(handle: BinaryIO) -> bytes | None:
    """One TFRecord record, its length and data checked against their CRC-32C (Beam 2.77's
    `_TFRecordUtil.read_record`: None at the end of the file, ValueError for a record cut short
    ("Fewer than ...") or one whose checksum does not match)."""
    return _TFRecordUtil.read_record(handle)


@contextlib.contextmanager
def variables_without_memory() -> Iterator[None]:
    """Keras 3.15 internals: variables made inside this scope are never initialised, so a model built
    from a `.keras` file's config takes no memory for its weights (`StatelessScope(initialize_variables=
    False)`); the list of uninitialised variables that Keras keeps for later is emptied on the way out
    (`global_state`), or it would hold every such model alive."""
    from keras.src.backend import StatelessScope
    from keras.src.backend.common import global_state

    try:
        with StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", [])


def installed_versions() -> dict[str, Any]:
    """The installed versions of the packages in CHECKED."""
    from importlib.metadata import version

    return {name: version(name) for name in CHECKED}
