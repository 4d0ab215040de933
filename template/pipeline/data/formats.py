"""The record formats of file inputs, and how `format=auto` tells them from a file's name.

* `key_values`: the 2017 sample's lines `key:v0,v1,...` (the default for any other name, so
  every earlier command keeps working);
* `jsonl`: one JSON object (fields fed to the signature's inputs by name) or array (the whole
  input of a single-input model) per line;
* `csv`: a header row naming the columns, then one row per instance; unquoted values are
  numbers, quoted ones strings (Vertex AI's rule);
* `tfrecord`: serialized `tf.train.Example`s, fed as bytes to a model whose serving input is one
  `tf.string` tensor (the TFX / Estimator export convention);
* `files`: every matched file is one instance, its bytes fed to one `tf.string` input.
"""

from __future__ import annotations

import posixpath

KEY_VALUES = "key_values"
JSONL = "jsonl"
CSV = "csv"
TFRECORD = "tfrecord"
FILES = "files"
AUTO = "auto"
FORMATS = (KEY_VALUES, JSONL, CSV, TFRECORD, FILES)
MESSAGE_FORMATS = (JSONL, KEY_VALUES, FILES)  # what a Pub/Sub message's body may be

_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".zstd", ".deflate", ".lzma", ".xz")
_BY_EXTENSION = {
    ".jsonl": JSONL,
    ".json": JSONL,
    ".ndjson": JSONL,
    ".csv": CSV,
    ".tfrecord": TFRECORD,
    ".tfrecords": TFRECORD,
    ".png": FILES,
    ".jpg": FILES,
    ".jpeg": FILES,
    ".gif": FILES,
    ".bmp": FILES,
}


def format_of_name(name: str) -> str:
    """The format a file name (or pattern) says, compression suffixes ignored; key_values otherwise."""
    base = posixpath.basename(name).lower()
    for suffix in _COMPRESSION_SUFFIXES:
        base = base.removesuffix(suffix)
    return _BY_EXTENSION.get(posixpath.splitext(base)[1], KEY_VALUES)
