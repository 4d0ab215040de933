"""The record formats of file inputs, and how `format=auto` tells them from a file's name.

* `key_values`: the 2017 sample's lines `key:v0,v1,...` (the default for any other name, so
  every earlier command keeps working);
* `jsonl`: one JSON object (fields fed to the signature's inputs by name) or array (the whole
  input of a single-input model) per line;
* `csv`: a header row naming the columns, then one row per instance; unquoted values are
  numbers, quoted ones strings (Vertex AI's rule);
* `tfrecord`: serialized `tf.train.Example`s, fed as bytes to a model whose serving input is one
  `tf.string` tensor (the TFX / Estimator export convention);
* `files`: every matched file is one instance, its bytes fed to one `tf.string` input;
* `parquet`: Parquet files (columns fed by name, read a row group slice at a time through Arrow);
* `avro`: Avro object container files (fields fed by name). Both compress inside the file (their
  codecs), so no compression suffix applies to them.

An input that names a folder (`is_folder`) stands for every file under it but the hidden ones
(`is_hidden_under`): the `_SUCCESS`, `_metadata` and `.crc` files Spark, Hive and Hadoop write
beside their parts. No input reads a folder's placeholder object (`folder/`, empty, made by the Cloud
Console and Hadoop's GCS connector). The launch and the job apply the same rule (`is_input_file`).
"""

from __future__ import annotations

import posixpath

KEY_VALUES = "key_values"
JSONL = "jsonl"
CSV = "csv"
TFRECORD = "tfrecord"
FILES = "files"
PARQUET = "parquet"
AVRO = "avro"
AUTO = "auto"
FORMATS = (KEY_VALUES, JSONL, CSV, TFRECORD, FILES, PARQUET, AVRO)
COLUMNAR_FORMATS = (PARQUET, AVRO)  # files with a schema, their columns fed by name as a table's are
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
    ".parquet": PARQUET,
    ".avro": AVRO,
}
_FOLDER_FILES = "**"  # what a folder stands for: every file under it, at any depth


def format_of_name(name: str) -> str:
    """The format a file name (or pattern) says, compression suffixes ignored; key_values otherwise."""
    base = posixpath.basename(name).lower()
    for suffix in _COMPRESSION_SUFFIXES:
        base = base.removesuffix(suffix)
    return _BY_EXTENSION.get(posixpath.splitext(base)[1], KEY_VALUES)


def is_folder(pattern: str) -> bool:
    """Whether an input names a folder: the launch writes every folder it finds with a trailing `/`."""
    return pattern.endswith("/")


def folder_files(folder: str) -> str:
    """The pattern of every file under a folder, at any depth."""
    return folder + _FOLDER_FILES


def is_hidden_under(path: str, folder: str) -> bool:
    """Whether a file under `folder` is one a folder input skips: its name, or a folder's between, starts
    with `_` or `.` (`_SUCCESS`, `_metadata`, `.part-0.crc`, `_temporary/...`)."""
    relative = path[len(folder) :] if path.startswith(folder) else posixpath.basename(path)
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def is_input_file(path: str, pattern: str) -> bool:
    """Whether a file a pattern (or folder) matched is one the input reads: not a folder's placeholder
    object (its name ends in `/`), nor, under a folder, a hidden file."""
    if path.endswith("/"):
        return False
    return not is_folder(pattern) or not is_hidden_under(path, pattern)
