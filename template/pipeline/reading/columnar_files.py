"""Reading Parquet and Avro files, Beam-free: what the job's sources run on workers and what a launch
runs on the first rows, read exactly the same way.

Parquet is read through Arrow (`pyarrow.parquet.ParquetFile` over a file opened with Beam's
filesystems, local or gs://), a batch of whole columns at a time, only the columns the job needs. A
file is split into slices of consecutive row groups (`parquet_slices`), so that the row groups of one
large file are read by many workers. Avro is read by fastavro, record by record, one reader per file
(an Avro file has no index to split it by). Both compress inside the file (Parquet's snappy, gzip,
zstd; Avro's null, deflate, snappy), so no name-based decompression applies.

Damage — a truncated file, a bad footer, a corrupt page or block — is one dead letter naming the file
and the row group or record; the rows before it are read, and nothing after it is passed off as the
file's end. A failure of the storage itself (a timeout, a permission) is raised, for the runner to
retry, never taken for damage.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.data.batches import ColumnBatch, RowBatch
from pipeline.data.dead_letters import DeadLetter, Reason, utc_now
from pipeline.data.formats import AVRO, PARQUET
from pipeline.reading.column_types import arrow_type_name, avro_columns

SLICE_BYTES = 64 << 20  # row groups read together as one element of work, as stored (compressed)
_MAGIC = b"PAR1"
_AVRO_MAGIC = b"Obj\x01"
OnBytes = Callable[[int], None] | None
VALUE_FIELD = "value"  # the one field of the rows of an Avro file whose values are not records


class _StoredFile(io.RawIOBase):
    """A file's bytes as stored, seekable, every byte read told to `on_bytes`; a storage failure is
    kept, so that a reader can tell it from damage."""

    def __init__(self, raw: Any, on_bytes: OnBytes):
        super().__init__()
        self._raw = raw
        self._on_bytes = on_bytes
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._raw.read(size)
        except Exception as error:
            self.failure = error
            raise
        if self._on_bytes is not None:
            self._on_bytes(len(data))
        return data

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _open(path: str, on_bytes: OnBytes = None) -> _StoredFile:
    raw = FileSystems.open(path, mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED)
    return _StoredFile(raw, on_bytes)


def _problem(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _letter(path: str, reason: str, message: str) -> DeadLetter:
    return DeadLetter(path, b"", reason, f"{path}: {message}"[:2000], timestamp=utc_now())


def _footer_reason(handle: _StoredFile) -> str:
    """Truncated when the file starts as Parquet but does not end as Parquet; corrupt otherwise."""
    handle.seek(0)
    head = handle.read(4)
    size = handle.seek(0, io.SEEK_END)
    handle.seek(max(size - 4, 0))
    return Reason.TRUNCATED_INPUT if head == _MAGIC and handle.read(4) != _MAGIC else Reason.CORRUPT_INPUT


# Parquet


@dataclass(frozen=True)
class ParquetSlice:
    """Consecutive row groups of one Parquet file, read as one element of work."""

    path: str
    first_group: int
    stop_group: int  # exclusive
    first_row: int  # the file's row index of the slice's first row
    rows: tuple[int, ...]  # the row count of each of its row groups
    share_bytes: int  # the file's bytes the slice stands for (progress): the shares of a file add up to its size
    version: tuple[int, float] | None = None  # the file's (size, time of its last change) as matched, if known

    @property
    def groups(self) -> list[int]:
        return list(range(self.first_group, self.stop_group))


def _metadata(handle: _StoredFile, path: str) -> pq.FileMetaData | DeadLetter:
    try:
        return pq.ParquetFile(handle).metadata
    except (pa.ArrowException, OSError, ValueError) as error:
        if handle.failure is not None:
            raise handle.failure from None
        reason = _footer_reason(handle)
        return _letter(path, reason, f"not a readable Parquet file ({_problem(error)}); no row of it was read")


def _stored_bytes(group: pq.RowGroupMetaData) -> int:
    """A row group's bytes as stored (compressed): its column chunks'."""
    return sum(group.column(column).total_compressed_size for column in range(group.num_columns))


def parquet_slices(
    path: str, size_bytes: int, slice_bytes: int = SLICE_BYTES, updated: float | None = None
) -> list[ParquetSlice] | DeadLetter:
    """The file's row groups in slices of about `slice_bytes` as stored (a larger row group alone), from its
    footer; the dead letter of a file whose footer cannot be read. `updated`: the file's time of change as
    matched, which lets a worker read the footer once for all the slices of the file it reads."""
    with _open(path) as handle:
        metadata = _metadata(handle, path)
    if isinstance(metadata, DeadLetter):
        return metadata
    groups = [metadata.row_group(group) for group in range(metadata.num_row_groups)]
    sizes = [_stored_bytes(group) for group in groups]
    weights = sizes if sum(sizes) else [1] * len(sizes)  # what each slice's share of the file is counted by
    total = max(sum(weights), 1)
    version = (size_bytes, updated) if updated else None
    slices: list[ParquetSlice] = []
    first = row = held = weighed = 0  # held: the bytes of groups first..group; weighed: the weight before first
    for group, size in enumerate(sizes):
        held += size
        stop = group + 1
        if stop < len(sizes) and held + sizes[stop] <= slice_bytes:
            continue
        weight = sum(weights[first:stop])
        share = size_bytes * (weighed + weight) // total - size_bytes * weighed // total  # shares add up exactly
        counts = tuple(kept.num_rows for kept in groups[first:stop])
        slices.append(ParquetSlice(path, first, stop, row, counts, share, version))
        row, weighed, held, first = row + sum(counts), weighed + weight, 0, stop
    return slices


_FOOTERS: OrderedDict[tuple[str, int, float], pq.FileMetaData] = OrderedDict()
_FOOTERS_KEPT = 4  # footers of files with many row groups are megabytes
_FOOTERS_LOCK = threading.Lock()


def _parquet_file(handle: _StoredFile, piece: ParquetSlice) -> pq.ParquetFile:
    """The slice's file, its footer read and parsed once per process for the file as matched (its path, size
    and time of change), not once per slice."""
    key = None if piece.version is None else (piece.path, *piece.version)
    with _FOOTERS_LOCK:
        metadata = _FOOTERS.get(key) if key is not None else None
    parquet = pq.ParquetFile(handle, metadata=metadata)
    if key is not None and metadata is None:
        with _FOOTERS_LOCK:
            _FOOTERS[key] = parquet.metadata
            while len(_FOOTERS) > _FOOTERS_KEPT:
                _FOOTERS.popitem(last=False)
    return parquet


def _group_of(piece: ParquetSlice, rows_done: int) -> tuple[int, int, int]:
    """(row group, its first row in the file, its row count) of the slice's row `rows_done`."""
    row, start = piece.first_row + rows_done, piece.first_row
    for offset, count in enumerate(piece.rows):
        if row < start + count or offset == len(piece.rows) - 1:
            return piece.first_group + offset, start, count
        start += count
    raise ValueError("a slice has row groups")


_DAMAGE = (pa.ArrowException, OSError, ValueError)  # what Arrow raises on bytes that are not what the footer says


def _tables(
    parquet: pq.ParquetFile, groups: list[int], batch_size: int, columns: list[str] | None
) -> Iterator[pa.Table]:
    """The row groups' rows in tables of `batch_size` (the last one shorter), across row groups: Arrow's
    reader ends a batch where a row group or a dictionary page ends, and a short batch is joined to the next."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in parquet.iter_batches(batch_size=batch_size, row_groups=groups, columns=columns, use_threads=False):
        if not held and batch.num_rows == batch_size:  # the usual batch, as Arrow made it
            yield pa.Table.from_batches([batch])
            continue
        held.append(batch)
        count += batch.num_rows
        if count >= batch_size:  # slices with a length: a table of no column keeps its rows only so
            table = pa.Table.from_batches(held)
            whole = count - count % batch_size
            for offset in range(0, whole, batch_size):
                yield table.slice(offset, batch_size)
            held = table.slice(whole, count - whole).to_batches() if count > whole else []
            count -= whole
    if count:
        yield pa.Table.from_batches(held)


def read_parquet_slice(
    piece: ParquetSlice,
    batch_size: int,
    columns: list[str] | None = None,
    key_column: str | None = None,
    on_bytes: OnBytes = None,
) -> Generator[ColumnBatch | DeadLetter, None, None]:
    """The rows of a slice in ColumnBatches of `batch_size` (the last shorter), only `columns` (None: all; those
    the file lacks are left out, for the decoder to name); a damaged row group is one dead letter, and the
    row groups after it are read. `on_bytes` is told the slice's share of the file as its rows are done.

    A batch may span row groups; where one fails, the row group it was in is read again alone (past the
    rows already read), so that the damage is pinned on the row group that holds it."""
    slice_rows = sum(piece.rows)
    done = told = 0  # rows of the slice read, or given up as damaged; the bytes told to on_bytes

    def tell() -> None:
        nonlocal told
        if on_bytes is not None and slice_rows:
            share = piece.share_bytes * min(done, slice_rows) // slice_rows
            if share > told:
                on_bytes(share - told)
                told = share

    def batch(table: pa.Table) -> ColumnBatch:
        nonlocal done
        done += table.num_rows
        tell()
        return ColumnBatch(piece.path, piece.first_row + done - table.num_rows, table, key_column)

    with _open(piece.path) as handle:
        try:
            parquet = _parquet_file(handle, piece)
        except _DAMAGE as error:
            if handle.failure is not None:
                raise handle.failure from None
            yield _letter(piece.path, _footer_reason(handle), f"footer unreadable ({_problem(error)})")
            return
        names = set(parquet.schema_arrow.names)
        wanted = None if columns is None else [name for name in columns if name in names]
        groups = piece.groups
        while groups:
            try:
                for table in _tables(parquet, groups, batch_size, wanted):
                    yield batch(table)
                return
            except _DAMAGE:
                if handle.failure is not None:
                    raise handle.failure from None
            group, group_start, count = _group_of(piece, done)
            skip = piece.first_row + done - group_start
            try:
                for table in _tables(parquet, [group], batch_size, wanted):
                    if skip < table.num_rows:
                        yield batch(table.slice(skip, table.num_rows - skip))
                    skip = max(skip - table.num_rows, 0)
            except _DAMAGE as error:
                if handle.failure is not None:
                    raise handle.failure from None
                first_unread = piece.first_row + done
                message = (
                    f"row group {group} (rows {group_start:,} to {group_start + count - 1:,}) is damaged "
                    f"({_problem(error)}); its {group_start + count - first_unread:,} rows from row "
                    f"{first_unread:,} were not read"
                )
                yield _letter(piece.path, Reason.CORRUPT_INPUT, message)
            done = group_start + count - piece.first_row
            tell()  # the rows given up count as done
            groups = [later for later in groups if later > group]


def read_parquet_file(
    path: str, batch_size: int, columns: list[str] | None = None, key_column: str | None = None
) -> Generator[ColumnBatch | DeadLetter, None, None]:
    """Every row of one file, slice after slice (a launch's first rows; tests)."""
    slices = parquet_slices(path, 0)
    if isinstance(slices, DeadLetter):
        yield slices
        return
    for piece in slices:
        yield from read_parquet_slice(piece, batch_size, columns, key_column)


# Avro


def read_avro_batches(
    path: str, batch_size: int, key_column: str | None = None, on_bytes: OnBytes = None
) -> Generator[RowBatch | DeadLetter, None, None]:
    """The records of one Avro file as RowBatches of at most `batch_size`; damage (a truncated file, a
    block whose codec or sync marker fails) ends the file in one dead letter naming the record."""
    batch: list[dict[str, Any]] = []
    start = 0
    with _open(path, on_bytes) as handle:
        try:
            records = iter(fastavro.reader(cast(BinaryIO, handle)))
        except Exception as error:  # fastavro's errors have no common type: ValueError, EOFError, zlib.error...
            if handle.failure is not None:
                raise handle.failure from None
            handle.seek(0)
            reason = _avro_reason(error) if handle.read(4) == _AVRO_MAGIC else Reason.CORRUPT_INPUT
            yield _letter(path, reason, f"not a readable Avro file ({_problem(error)}); no record read")
            return
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except Exception as error:
                if handle.failure is not None:
                    raise handle.failure from None
                index = start + len(batch)
                if batch:
                    yield RowBatch(path, batch, key_column, start)
                message = (
                    f"the block from record {index:,} on is damaged ({_problem(error)}); it and the rest of the "
                    "file were not read"
                )
                yield _letter(path, _avro_reason(error), message)
                return
            batch.append(record if isinstance(record, dict) else {VALUE_FIELD: record})
            if len(batch) == batch_size:
                yield RowBatch(path, batch, key_column, start)
                start += len(batch)
                batch = []
    if batch:
        yield RowBatch(path, batch, key_column, start)


def _avro_reason(error: BaseException | None) -> str:
    """Truncated where the error is, or was raised from, the end of the file; corrupt otherwise."""
    while error is not None:
        if isinstance(error, EOFError):
            return Reason.TRUNCATED_INPUT
        error = error.__cause__ or error.__context__
    return Reason.CORRUPT_INPUT


# Schemas


def file_columns(path: str, record_format: str) -> dict[str, str]:
    """The columns (fields) of a Parquet or Avro file and their type names (`column_types`), from its footer
    or header."""
    with _open(path) as handle:
        if record_format == PARQUET:
            schema = pq.ParquetFile(handle).schema_arrow
            return {field.name: arrow_type_name(field.type) for field in schema}
        assert record_format == AVRO, f"{record_format} files have no schema"
        writer_schema: Any = fastavro.reader(cast(BinaryIO, handle)).writer_schema
    return avro_columns(writer_schema, VALUE_FIELD)  # a file of plain values: each one a row's one field
