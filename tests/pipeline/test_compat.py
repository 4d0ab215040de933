"""The private APIs fenced in `pipeline.compat`: each still there and doing what the template relies on,
and a loud failure when an upgrade brings versions that nobody has checked them against."""

from __future__ import annotations

import io
from typing import ClassVar

import apache_beam as beam
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


class _CountBundles(beam.DoFn):
    """Notes its name each time the runner starts a bundle of its step."""

    started: ClassVar[list[str]] = []

    def __init__(self, name: str):
        self._name = name

    def start_bundle(self):
        _CountBundles.started.append(self._name)

    def process(self, element):
        yield element


def test_a_local_stream_runs_no_step_on_an_empty_bundle_and_loses_no_element():
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.testing.util import assert_that, equal_to

    compat.spare_repeated_work_in_local_streaming_runs()
    _CountBundles.started.clear()
    stream = TestStream().add_elements([1, 2, 3]).add_elements([4, 5]).advance_watermark_to_infinity()
    with beam.Pipeline(options=PipelineOptions(streaming=True)) as pipeline:
        numbers = pipeline | stream
        odd = numbers | "Keep odd" >> beam.Filter(lambda n: n % 2) | "Count odd" >> beam.ParDo(_CountBundles("odd"))
        _ = numbers | "Keep none" >> beam.Filter(lambda n: n > 9) | "Count none" >> beam.ParDo(_CountBundles("none"))
        assert_that(odd, equal_to([1, 3, 5]))
    assert "odd" in _CountBundles.started
    assert "none" not in _CountBundles.started  # the runner hands an empty bundle on without the patch


def test_the_state_and_timers_of_a_dofn_are_inspected_once_per_class(monkeypatch):
    from apache_beam.coders import VarIntCoder
    from apache_beam.runners import common
    from apache_beam.transforms import userstate
    from apache_beam.transforms.timeutil import TimeDomain

    buffer_spec = userstate.BagStateSpec("buffer", VarIntCoder())
    flush_spec = userstate.TimerSpec("flush", TimeDomain.WATERMARK)
    buffer_param, flush_param = beam.DoFn.StateParam(buffer_spec), beam.DoFn.TimerParam(flush_spec)

    class Buffer(beam.DoFn):  # a class of its own: nothing remembered of it yet
        def process(self, element, buffer=buffer_param, flush=flush_param):
            buffer.add(element)

        @userstate.on_timer(flush_spec)
        def on_flush(self, buffer=buffer_param):
            yield from buffer.read()

    inspected: list[str] = []

    class CountingWrapper(common.MethodWrapper):
        def __init__(self, obj_to_invoke, method_name):
            inspected.append(method_name)
            super().__init__(obj_to_invoke, method_name)

    monkeypatch.setattr(common, "MethodWrapper", CountingWrapper)
    compat.spare_repeated_work_in_local_streaming_runs()
    first = userstate.get_dofn_specs(Buffer())
    assert first == ({buffer_spec}, {flush_spec}) and inspected
    inspected.clear()
    again = userstate.get_dofn_specs(Buffer())  # another instance, as the runner makes one per bundle
    assert again == first and again[0] is not first[0]  # copies: a caller's changes stay its own
    assert not inspected
    assert userstate.is_stateful_dofn(Buffer()) and not userstate.is_stateful_dofn(_CountBundles("x"))

    holder = _CountBundles("bound")  # a FlatMap of a bound method: a DoFn with a method of its own, never remembered
    assert userstate.get_dofn_specs(beam.FlatMap(holder.process).fn) == (set(), set())
    inspected.clear()
    userstate.get_dofn_specs(beam.FlatMap(holder.process).fn)
    assert "process" in inspected
