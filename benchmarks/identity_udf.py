"""A UDF that returns its input: `make bench` measures what the UDF step itself costs."""


def identity(record: dict) -> dict:
    return record
