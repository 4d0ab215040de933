"""The private APIs fenced in `pipeline.compat`: each still there and doing what the template relies on,
and a loud failure when an upgrade brings versions that nobody has checked them against."""

from __future__ import annotations

import io

import pytest

from pipeline import compat


def test_the_installed_versions_are_the_ones_the_private_apis_were_checked_against():
    installed = compat.installed_versions()
    assert installed == compat.CHECKED, (
        f"installed {installed}, checked {compat.CHECKED}: an upgrade changed a package whose private APIs "
        "template/pipeline/compat.py uses; re-check each entry there against the new version, then update CHECKED"
    )


def test_beam_believes_resource_missing_without_torch_and_gets_it_back():
    from apache_beam.ml.inference import base

    compat.restore_memory_readings()
    assert base.resource is __import__("resource")
    assert callable(base.resource.getrusage)


def test_the_tfrecord_reader_reads_checks_and_ends_as_the_readers_expect(tmp_path):
    import tensorflow as tf

    path = tmp_path / "a.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"first")
        writer.write(b"second")
    data = path.read_bytes()
    handle = io.BytesIO(data)
    assert [compat.read_tfrecord(handle), compat.read_tfrecord(handle), compat.read_tfrecord(handle)] == [
        b"first",
        b"second",
        None,
    ]
    with pytest.raises(ValueError, match="Fewer than"):
        compat.read_tfrecord(io.BytesIO(data[:20]))
    corrupt = bytearray(data)
    corrupt[14] ^= 0xFF  # a byte of the first record's data: its CRC no longer matches
    with pytest.raises(ValueError) as raised:
        compat.read_tfrecord(io.BytesIO(bytes(corrupt)))
    assert "Fewer than" not in str(raised.value)


def test_keras_variables_made_without_memory_are_not_initialised_and_not_kept():
    import keras
    from keras.src.backend.common import global_state

    with compat.variables_without_memory():
        layer = keras.layers.Dense(4)
        layer.build((None, 1_000_000))
        assert global_state.get_global_attribute("uninitialized_variables")
    assert layer.kernel._value is None  # no tensor behind it: no memory taken
    assert tuple(layer.kernel.shape) == (1_000_000, 4)
    assert not global_state.get_global_attribute("uninitialized_variables")
