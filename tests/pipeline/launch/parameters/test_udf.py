"""The UDF parameters name Google's templates' parameters as docs/udf.md maps them, and claim no more."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.launch.parameters import udf
from pipeline.launch.parameters.udf import UDF_PARAMETERS

DOCS = Path(__file__).resolve().parents[4] / "docs" / "udf.md"


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_each_parameter_names_the_google_parameter_the_docs_map_it_to_and_none_is_called_the_same():
    mapped = dict(re.findall(r"^\| `(python_udf_\w+)` \| `(\w+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    assert mapped  # the docs' table
    for parameter in UDF_PARAMETERS:
        google = re.search(r"Google's templates call it (\w+)", parameter.help)
        assert (google.group(1) if google else None) == mapped.get(parameter.name), parameter.name
        assert google is None or snake_case(google.group(1)) != parameter.name
    assert "the same in this template's snake_case" not in (udf.__doc__ or "")
