"""How the numbers of an array are written, in JSON and in BigQuery, wherever rows are made.

JSON: each value in the shortest decimal that round-trips its dtype (a float32 0.1 is 0.1, not
0.10000000149011612), one per instance. BigQuery: the column type of a dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

_BQ_TYPES = {"f": "FLOAT", "i": "INTEGER", "u": "INTEGER", "b": "BOOLEAN"}


def json_values(array: np.ndarray) -> list[Any]:
    """A numeric or boolean array as JSON-ready Python values, one per instance, shortest decimals."""
    return orjson.loads(orjson.dumps(np.ascontiguousarray(array), option=orjson.OPT_SERIALIZE_NUMPY))


def bigquery_type(dtype: str) -> str:
    """The BigQuery column type of a tensor dtype: STRING for text, FLOAT for any float (and the rest)."""
    if dtype == "string":
        return "STRING"
    return _BQ_TYPES.get(np.dtype(dtype).kind, "FLOAT")
