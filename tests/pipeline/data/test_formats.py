"""`format=auto`: the record format a file name or pattern says, compression suffixes ignored."""

from __future__ import annotations

import pytest

from pipeline.data.formats import (
    AUTO,
    AVRO,
    CSV,
    FILES,
    FORMATS,
    JSONL,
    KEY_VALUES,
    PARQUET,
    TFRECORD,
    folder_files,
    format_of_name,
    is_folder,
    is_hidden_under,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.jsonl", JSONL),
        ("data.json", JSONL),
        ("data.ndjson", JSONL),
        ("data.csv", CSV),
        ("data.tfrecord", TFRECORD),
        ("data.tfrecords", TFRECORD),
        ("image.png", FILES),
        ("image.jpg", FILES),
        ("image.jpeg", FILES),
        ("image.gif", FILES),
        ("image.bmp", FILES),
        ("data.parquet", PARQUET),
        ("gs://lake/t/part-00000-5f1c-c000.snappy.parquet", PARQUET),
        ("part-0.gz.parquet", PARQUET),
        ("data.avro", AVRO),
    ],
)
def test_every_known_extension_names_its_format(name, expected):
    assert format_of_name(name) == expected


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".zst", ".zstd", ".deflate", ".lzma", ".xz"])
def test_compression_suffixes_are_ignored(suffix):
    assert format_of_name(f"gs://bucket/part-0001.csv{suffix}") == CSV
    assert format_of_name(f"records.tfrecord{suffix}") == TFRECORD


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("gs://bucket/dir/*.jsonl.gz", JSONL),
        ("gs://bucket/images/**/*.PNG", FILES),
        ("/local/shards/part-[0-9]*.tfrecords", TFRECORD),
        ("gs://bucket/dir/*", KEY_VALUES),
    ],
)
def test_patterns_are_read_by_their_last_component(pattern, expected):
    assert format_of_name(pattern) == expected


def test_extensions_are_case_insensitive():
    assert format_of_name("DATA.JSONL.GZ") == JSONL
    assert format_of_name("Photo.JpEg") == FILES


@pytest.mark.parametrize(
    "name",
    [
        "images.txt.gz",  # the 2017 sample's input
        "images.txt",
        "images",
        "gs://bucket/no-extension",
        "data.gz",  # only a compression suffix
        ".csv",  # a hidden file: no extension
    ],
)
def test_any_other_name_is_key_values_so_earlier_commands_keep_working(name):
    assert format_of_name(name) == KEY_VALUES


def test_a_directory_named_like_a_format_does_not_decide():
    """Only the file's own name counts, not the folders it sits in."""
    assert format_of_name("gs://bucket/data.csv/images.txt") == KEY_VALUES
    assert format_of_name("gs://bucket/exports.jsonl/part-0.csv") == CSV


def test_format_names_are_the_documented_ones():
    assert FORMATS == ("key_values", "jsonl", "csv", "tfrecord", "files", "parquet", "avro")
    assert AUTO == "auto" and AUTO not in FORMATS


def test_a_folder_is_marked_by_its_trailing_slash_and_stands_for_every_file_under_it():
    assert is_folder("gs://lake/penguins/") and not is_folder("gs://lake/penguins/*.parquet")
    assert folder_files("gs://lake/penguins/") == "gs://lake/penguins/**"


@pytest.mark.parametrize(
    ("path", "hidden"),
    [
        ("gs://lake/t/part-00000.snappy.parquet", False),
        ("gs://lake/t/date=2024-01-01/part-0.parquet", False),
        ("gs://lake/t/_SUCCESS", True),
        ("gs://lake/t/_metadata", True),
        ("gs://lake/t/.part-00000.snappy.parquet.crc", True),
        ("gs://lake/t/_temporary/0/part-0.parquet", True),
    ],
)
def test_a_folder_skips_hidden_names_below_it_but_not_above(path, hidden):
    assert is_hidden_under(path, "gs://lake/t/") is hidden
    assert is_hidden_under(path.replace("gs://lake/", "gs://lake/_staging/"), "gs://lake/_staging/t/") is hidden


def test_a_folder_placeholder_object_is_never_an_input_file():
    from pipeline.data.formats import is_input_file

    assert not is_input_file("gs://lake/t/", "gs://lake/t/")
    assert not is_input_file("gs://lake/t/day=1/", "gs://lake/t/*")
    assert not is_input_file("gs://lake/t/_SUCCESS", "gs://lake/t/")
    assert is_input_file("gs://lake/t/_SUCCESS", "gs://lake/t/_*")  # a pattern takes what it names
    assert is_input_file("gs://lake/t/day=1/part-0.parquet", "gs://lake/t/")
