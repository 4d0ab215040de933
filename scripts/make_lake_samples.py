"""Writes the penguins rows as a data lake holds them: a Parquet file, a folder of Parquet parts, an Avro file.

From samples/penguins/penguins.csv, the same 333 rows and keys, typed as a lake's writer would type
them: `key` int64, `island`, `sex`, `species` strings, the four measurements doubles.

* `penguins.parquet`: snappy, 3 row groups of 111 rows (what Spark and pandas write by default:
  snappy; several row groups, as a large file has);
* `parts/`: the rows in 3 Parquet part files, `part-0000N.snappy.parquet`, and an empty `_SUCCESS`,
  as a Spark job leaves its output folder;
* `penguins.avro`: an Avro object container file, deflate codec, with a fixed sync marker.

Deterministic: the same bytes on every run with the pinned pyarrow and fastavro (`make sample-lake`;
`--out DIR` writes under DIR instead of samples/penguins; tests/test_samples.py compares).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
PENGUINS = ROOT / "samples" / "penguins"
STRING_COLUMNS = ("island", "sex", "species")
MEASUREMENTS = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
ROW_GROUPS = 3
PARTS = 3
SCHEMA = pa.schema(
    [
        pa.field("key", pa.int64(), nullable=False),
        pa.field("island", pa.string()),
        *(pa.field(name, pa.float64()) for name in MEASUREMENTS),
        pa.field("sex", pa.string()),
        pa.field("species", pa.string()),
    ]
)
AVRO_SCHEMA = {
    "type": "record",
    "name": "Penguin",
    "namespace": "samples.penguins",
    "fields": [
        {"name": "key", "type": "long"},
        {"name": "island", "type": ["null", "string"]},
        *({"name": name, "type": ["null", "double"]} for name in MEASUREMENTS),
        {"name": "sex", "type": ["null", "string"]},
        {"name": "species", "type": ["null", "string"]},
    ],
}


def read_rows(path: Path = PENGUINS / "penguins.csv") -> list[dict]:
    """The CSV's rows, typed: the key an integer, the measurements floats, the rest text."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {
                name: int(row[name]) if name == "key" else float(row[name]) if name in MEASUREMENTS else row[name]
                for name in SCHEMA.names
            }
            for row in csv.DictReader(handle)
        ]


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _write_parquet(table: pa.Table, path: Path, row_group_size: int) -> None:
    pq.write_table(table, path, compression="snappy", row_group_size=row_group_size)


def write_samples(rows: list[dict], out: Path) -> list[Path]:
    """Every lake file under `out`; their paths."""
    table = _table(rows)
    single = out / "penguins.parquet"
    _write_parquet(table, single, -(-len(rows) // ROW_GROUPS))
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    written = [single]
    size = -(-len(rows) // PARTS)
    for part in range(PARTS):
        path = parts / f"part-{part:05d}.snappy.parquet"
        _write_parquet(table.slice(part * size, size), path, size)
        written.append(path)
    success = parts / "_SUCCESS"
    success.write_bytes(b"")
    avro = out / "penguins.avro"
    marker = hashlib.sha256(b"samples/penguins/penguins.avro").digest()[:16]  # random by default: fixed here
    with avro.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(AVRO_SCHEMA), rows, codec="deflate", sync_marker=marker)
    return [*written, success, avro]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PENGUINS, help="folder to write into (samples/penguins)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in write_samples(read_rows(), args.out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
