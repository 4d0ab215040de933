"""Folder placeholder objects, as Cloud Storage lists them: the empty `folder/` and `folder/sub/` objects the
Cloud Console and Hadoop's GCS connector make. The GCS emulator cannot hold such names, so Beam's
`FileSystems.match` is wrapped to list them beside a local folder's real files, sorted first as GCS sorts them."""

from __future__ import annotations

import posixpath

from apache_beam.io.filesystem import FileMetadata, MatchResult
from apache_beam.io.filesystems import FileSystems


def list_placeholders(monkeypatch) -> None:
    """Every match also lists the matched folder's placeholder and a `sub/` one's."""
    match = FileSystems.match

    def with_placeholders(patterns, limits=None):
        results = match(patterns, limits)
        listed = []
        for pattern, result in zip(patterns, results, strict=True):
            folder = posixpath.dirname(pattern.split("*", 1)[0].rstrip("/") + "/x") + "/"
            placeholders = [FileMetadata(folder, 0), FileMetadata(folder + "sub/", 0)]
            listed.append(MatchResult(result.pattern, placeholders + list(result.metadata_list)))
        return listed

    monkeypatch.setattr(FileSystems, "match", staticmethod(with_placeholders))
