"""Accuracy of a prediction run against known labels: the evaluation step of the demo.

Labels come as an MNIST IDX label file (label of key k = k-th entry; gzip allowed) or as
text lines `key,label`. Predictions are the JSON-lines files a text sink writes.

    python -m pipeline.evaluate --predictions 'out/predictions-*.jsonl' \\
        --labels labels.idx.gz --keys 8000:9999
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from apache_beam.io.filesystems import FileSystems

IDX_LABELS_MAGIC = 2049


@dataclass(frozen=True)
class Accuracy:
    evaluated: int
    correct: int
    missing: int  # labelled keys in range with no prediction

    @property
    def accuracy(self) -> float:
        return self.correct / self.evaluated if self.evaluated else 0.0


def _read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        data = handle.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def read_labels(path: str) -> dict[int, int]:
    """{key: label} from an IDX label file or from `key,label` lines."""
    data = _read_bytes(path)
    if len(data) >= 8 and struct.unpack(">i", data[:4])[0] == IDX_LABELS_MAGIC:
        (count,) = struct.unpack(">i", data[4:8])
        return {key: int(label) for key, label in enumerate(data[8 : 8 + count])}
    labels = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if line.strip():
            key, _, label = line.partition(",")
            try:
                labels[int(key)] = int(label)
            except ValueError:
                raise ValueError(f"{path}:{number}: expected 'key,label', got {line[:60]!r}") from None
    return labels


def read_predictions(pattern: str) -> Iterator[tuple[int, int]]:
    """(key, predicted class) from every JSON line of the files matching `pattern`."""
    for metadata in FileSystems.match([pattern])[0].metadata_list:
        with FileSystems.open(metadata.path) as handle:
            for line in handle:
                if line.strip():
                    row = orjson.loads(line)
                    yield int(row["key"]), int(row["prediction"])


def evaluate(predictions: dict[int, int], labels: dict[int, int], first_key: int, last_key: int) -> Accuracy:
    keys = [key for key in labels if first_key <= key <= last_key]
    evaluated = [key for key in keys if key in predictions]
    correct = sum(predictions[key] == labels[key] for key in evaluated)
    return Accuracy(len(evaluated), correct, len(keys) - len(evaluated))


def _key_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition(":")
    return int(first), int(last)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True, help="pattern of the prediction JSON-lines files")
    parser.add_argument("--labels", required=True, help="IDX label file (optionally gzipped) or key,label lines")
    parser.add_argument("--keys", default=f"0:{2**63 - 1}", type=_key_range, help="inclusive key range FIRST:LAST")
    args = parser.parse_args(argv)
    predictions = dict(read_predictions(args.predictions))
    result = evaluate(predictions, read_labels(args.labels), *args.keys)
    first, last = args.keys
    print(
        f"Accuracy on keys {first}..{last}: {result.accuracy:.2%} "
        f"({result.correct:,} of {result.evaluated:,} correct; {result.missing:,} labelled keys without a prediction)"
    )
    return 0 if result.evaluated else 1


if __name__ == "__main__":
    sys.exit(main())
