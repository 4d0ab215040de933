"""Numbers given as parameters (shares, seconds), checked: a value out of range is one line at launch."""

from __future__ import annotations

from pipeline.errors import LaunchError


def fraction(value, flag: str, must: str) -> float:
    """A number above 0 and at most 1, or the one-line error `<flag>=<value>: <must>`."""
    try:
        number = float(str(value).strip())
    except ValueError:
        number = -1.0
    if not 0.0 < number <= 1.0:
        raise LaunchError(f"{flag}={value}: {must}")
    return number


def share(value, flag: str) -> float:
    """A share from 0 (exclusive) to 1, or a one-line error."""
    return fraction(value, flag, "must be a share above 0 and at most 1 (1 never stops the job)")


def seconds(value, flag: str, least: float, most: float, whole: bool = False) -> float:
    """A number of seconds from `least` to `most` (a whole number where `whole`), or a one-line error."""
    kind = "a whole number of seconds" if whole else "a number of seconds"
    try:
        number = float(str(value).strip())
    except ValueError:
        raise LaunchError(f"{flag}={value}: must be {kind} from {least:g} to {most:g}") from None
    if not least <= number <= most or (whole and not number.is_integer()):
        raise LaunchError(f"{flag}={value}: must be {kind} from {least:g} to {most:g}")
    return number
