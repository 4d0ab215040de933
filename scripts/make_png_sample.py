"""Builds the PNG sample: 200 held-out MNIST digits as PNG files and a model that takes PNG bytes.

Many users keep images as files, not as `key:v0,...` lines; this sample is those files and a
SavedModel whose `serving_default` takes `image_bytes` (None,) tf.string, a batch of PNG file
contents, decodes them in the graph and returns the sample model's `scores` (None, 10). It
wraps the trained samples/model (its weights are loaded and saved again, not retrained), so
its scores are the sample model's on the same digits up to the 1/255 steps of 8-bit pixels.

The digits are keys 8000..8199 of samples/mnist/images.txt.gz (held out from the sample model's
training), written as 28x28 8-bit grayscale PNGs, round(v * 255), with Python's zlib: the same
bytes on every run. samples/png/labels.csv holds their `key,label` lines, the form
`pipeline.evaluate --labels` reads. Run with `make sample-png`; `--out DIR` writes under DIR.
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import sys
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "template"))

import numpy as np  # noqa: E402

from pipeline.data.seed_lines import parse_lines  # noqa: E402
from pipeline.evaluate import read_labels  # noqa: E402

KEYS = range(8000, 8200)  # held out from samples/model's training (keys 0..7999)
SIDE = 28
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_digits(path: Path, keys: range) -> dict[int, np.ndarray]:
    """{key: 28x28 uint8 pixels} for `keys`, from `key:v0,...,v783` lines of values in [0, 1], parsed
    as the pipeline parses them."""
    with gzip.open(path, "rb") as handle:
        parsed = parse_lines(handle.read().splitlines(), SIDE * SIDE)
    wanted = np.isin(parsed.keys, list(keys))
    digits = {}
    for key, pixels in zip(parsed.keys[wanted].tolist(), parsed.images[wanted].astype(np.float64), strict=True):
        if pixels.min() < 0 or pixels.max() > 1:
            raise SystemExit(f"{path}: key {key} is not {SIDE * SIDE} values in [0, 1]")
        digits[key] = np.round(pixels * 255).astype(np.uint8).reshape(SIDE, SIDE)
    missing = sorted(set(keys) - set(digits))
    if missing:
        raise SystemExit(f"{path}: no line for keys {missing[:5]}...")
    return digits


def png_bytes(pixels: np.ndarray) -> bytes:
    """A minimal 8-bit grayscale PNG (IHDR, one IDAT, IEND): no Pillow, no timestamps, same bytes each run."""
    height, width = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # bit depth 8, grayscale, no interlace
    scanlines = b"".join(b"\x00" + row.tobytes() for row in pixels.astype(np.uint8))  # filter 0 (none) each row
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines, 9)) + chunk(b"IEND", b"")


def export_png_model(sample_model: Path, path: Path) -> None:
    """A SavedModel: image_bytes (None,) string -> scores (None, 10), the sample model behind a PNG decoder.

    The loaded sample model is tracked on the module, so its variables are saved with the new
    graph; a PNG that is not 28x28 fails the reshape (InvalidArgumentError) instead of being resized.
    """
    import tensorflow as tf

    module = tf.Module()
    module.sample_model = tf.saved_model.load(str(sample_model))
    classify = module.sample_model.signatures["serving_default"]

    def decode(png: tf.Tensor) -> tf.Tensor:
        pixels = tf.io.decode_png(png, channels=1, dtype=tf.uint8)
        return tf.reshape(tf.cast(pixels, tf.float32) / 255.0, [SIDE, SIDE, 1])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(image_bytes):
        images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec([SIDE, SIDE, 1], tf.float32))
        return {"scores": classify(image=images)["scores"]}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=ROOT / "samples/mnist/images.txt.gz")
    parser.add_argument("--labels", type=Path, default=ROOT / "samples/mnist/t10k-labels-idx1-ubyte.gz")
    parser.add_argument("--model", type=Path, default=ROOT / "samples/model", help="the trained sample model")
    parser.add_argument("--out", type=Path, default=ROOT / "samples/png", help="folder for digits, labels, model")
    args = parser.parse_args()

    digits = read_digits(args.images, KEYS)
    labels = read_labels(str(args.labels))
    (args.out / "digits").mkdir(parents=True, exist_ok=True)
    for key, pixels in digits.items():
        (args.out / "digits" / f"{key}.png").write_bytes(png_bytes(pixels))
    (args.out / "labels.csv").write_text("".join(f"{key},{labels[key]}\n" for key in KEYS), encoding="ascii")
    size = sum((args.out / "digits" / f"{key}.png").stat().st_size for key in KEYS)
    print(f"wrote {len(digits)} PNGs ({size / 1e3:.0f} KB) and labels.csv for keys {KEYS.start}..{KEYS.stop - 1}")

    export_png_model(args.model, args.out / "model")
    size = sum(path.stat().st_size for path in (args.out / "model").rglob("*") if path.is_file())
    print(f"exported {args.out / 'model'} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
