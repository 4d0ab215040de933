"""CSV fields: RFC 4180 quoting, and Vertex AI's typing of quoted and unquoted values."""

from __future__ import annotations

from pipeline.data.decoders.csv_typing import split_csv_line, typed


def test_split_csv_line_follows_rfc_4180_quoting_and_says_what_was_quoted():
    assert split_csv_line('1,"a, b",  2.5 ,"say ""hi""",') == [
        ("1", False),
        ("a, b", True),
        ("2.5", False),
        ('say "hi"', True),
        ("", False),
    ]
    assert split_csv_line('1,"never closed') is None
    assert split_csv_line('1,a"b') is None
    assert [typed(*field) for field in split_csv_line('7,-1.5e3,"7",x,')] == [7, -1500.0, "7", "x", None]
