"""Whole files: bytes for one tf.string input, keyed by their paths."""

from __future__ import annotations

from pipeline.data.batches import RecordBatch
from pipeline.data.instances import KEY_POSITION, Feeding
from pipeline.model.signatures import TensorSpec
from tests.pipeline.data.decoders.tabular import decode


def test_whole_files_are_keyed_by_their_paths():
    feeding = Feeding((TensorSpec("image_bytes", "string", ()),), "key", KEY_POSITION)
    batch = RecordBatch("", 0, [b"\x89PNG...", b"GIF89a"], origins=("gs://b/a.png", "gs://b/b.gif"))
    (instances,) = decode("files", batch, feeding).instances
    assert instances.keys.tolist() == ["gs://b/a.png", "gs://b/b.gif"]
    assert instances.features["image_bytes"].tolist() == [b"\x89PNG...", b"GIF89a"]
