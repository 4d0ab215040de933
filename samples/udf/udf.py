"""The UDF sample's functions: one before the model, one after it (docs/udf.md).

Before: each record names a PNG file; the model (samples/png/model) takes the file's bytes, so the UDF reads
them. Beam's FileSystems reads a local path and a gs:// one alike, with the workers' own credentials.
After: each prediction row keeps the key, the digit and its name, and the confidence rounded; the ten
scores are left out.
"""

from apache_beam.io.filesystems import FileSystems

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def read_png(record: dict) -> dict:
    """{"key": 8000, "path": ".../8000.png"} -> {"key": 8000, "image_bytes": <the file's bytes>}."""
    with FileSystems.open(record["path"]) as handle:
        return {"key": record["key"], "image_bytes": handle.read()}


def name_digit(row: dict) -> dict:
    """{"key", "prediction", "confidence", "pred0".."pred9"} -> {"key", "prediction", "digit", "confidence"}."""
    return {
        "key": row["key"],
        "prediction": row["prediction"],
        "digit": DIGIT_NAMES[row["prediction"]],
        "confidence": round(row["confidence"], 4),
    }
