"""Damaged compressed files, made one way for every test that needs them: each kind, and the dead-letter
reason that reading it must end with (None where the file is whole)."""

from __future__ import annotations

import bz2
import gzip
import zlib

REASONS: dict[str, str | None] = {
    "whole": None,
    "members": None,  # concatenated gzip members read as one file, as `gzip -d` reads them
    "zero-padded": None,
    "truncated": "truncated_input",
    "no-trailer": "truncated_input",
    "zero-bytes": "truncated_input",
    "not-gzip": "corrupt_input",
    "garbage-after": "corrupt_input",
    "wrong-crc": "checksum_mismatch",
    "wrong-length": "checksum_mismatch",
    "truncated-bz2": "truncated_input",
}
DAMAGED = [kind for kind, reason in REASONS.items() if reason is not None]
UNREADABLE = {"not-gzip", "zero-bytes"}  # nothing at all can be read from these


def damaged(kind: str, data: bytes) -> bytes:
    """`data` compressed (gzip; bzip2 for `truncated-bz2`) and then damaged in the way `kind` names."""
    good = gzip.compress(data)
    if kind == "whole":
        return good
    if kind == "members":
        return gzip.compress(data[: len(data) // 3]) + gzip.compress(data[len(data) // 3 :])
    if kind == "zero-padded":
        return good + b"\0" * 64
    if kind == "truncated":
        return good[: len(good) * 2 // 3]
    if kind == "no-trailer":
        return good[:-8]
    if kind == "zero-bytes":
        return b""
    if kind == "not-gzip":
        return b"this was never gzip\n" * 50
    if kind == "garbage-after":
        return good + b"trailing garbage"
    if kind == "wrong-crc":
        return good[:-8] + (zlib.crc32(data) ^ 1).to_bytes(4, "little") + good[-4:]
    if kind == "wrong-length":
        return good[:-4] + (len(data) + 7).to_bytes(4, "little")
    if kind == "truncated-bz2":
        compressed = bz2.compress(data)
        return compressed[: len(compressed) // 2]
    raise ValueError(kind)
