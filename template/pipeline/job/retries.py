"""Retries, with exponential backoff, of the transient faults of Google APIs that a client does not retry itself.

The client libraries ride out most transient faults on their own: google-cloud-storage (hence
Beam's GcsIO and every gs:// read, write, match and delete) retries 408, 429, 5xx and dropped
connections; Beam's apitools BigQuery client retries 429 and 5xx; the Storage Read client resumes
a cut stream. google-cloud-bigquery does too, but decides by an error's structured `reason` and,
for an error without one, by its type, and 504 Gateway Timeout is not among those types: a bare
504 (a front end's HTML page, or Google's `{"error": {"code", "message", "status"}}` body) fails
get_table, get_dataset, list_rows and a query at once, and with them a launch (or the job's last
step) that a second try would let through. The launch's checks and the job's emptying of a table
that got no rows (`replace_tables`) wrap those calls in `retrying` (in job/, which both may import).

Only what a retry can cure is retried: HTTP 408, 429, 500, 502, 503 and 504, BigQuery's transient
reasons (rateLimitExceeded, backendError, ...), and connections dropped, reset or timed out. Never
a 4xx that states a mistake (400 bad query, 403 no permission, 404 no such table): those are the
user's to fix, and they are reported at once.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable
from typing import TypeVar

ATTEMPTS = 5  # in all: the first try and 4 retries
FIRST_DELAY_S = 0.5  # then about 1, 2 and 4 s (each +-50 %): a launch gives up after some 8 s of waiting
MAX_DELAY_S = 8.0
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_REASONS = frozenset({"rateLimitExceeded", "backendError", "internalError", "badGateway"})

T = TypeVar("T")
_LOGGER = logging.getLogger(__name__)


class RetryCount:
    """How many retries `retrying` made in this process: what tests read to tell who cured a fault."""

    total: int = 0


RETRIES = RetryCount()


def is_transient(error: BaseException) -> bool:
    """Whether `error` is a fault that the same request may not meet again (never a user's mistake)."""
    import requests
    import urllib3
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(error, api_exceptions.GoogleAPICallError):
        reasons = {item.get("reason") for item in error.errors or () if isinstance(item, dict)}
        return error.code in TRANSIENT_STATUS or bool(reasons & TRANSIENT_REASONS)
    if isinstance(error, requests.exceptions.SSLError):  # a certificate will not fix itself
        return False
    return isinstance(
        error,
        (
            ConnectionError,  # refused, reset, aborted, broken pipe
            TimeoutError,
            http.client.HTTPException,  # the connection closed before an answer
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout,
            urllib3.exceptions.ProtocolError,
            auth_exceptions.TransportError,  # the token could not be fetched
        ),
    )


def retrying(call: Callable[[], T], what: str) -> T:
    """`call()`, tried up to ATTEMPTS times while it fails with a transient fault (Beam's backoff helper).

    Errors that are not transient, and the last transient one, are raised as they are, so callers
    report them as before. `what` names the call in the log."""
    from apache_beam.utils import retry

    def note(_message: str, delay_s: float, _name: str, error: str, _traceback: str) -> None:
        RETRIES.total += 1
        _LOGGER.info("%s: transient fault, retrying in %.1f s: %s", what, delay_s, error.strip())

    @retry.with_exponential_backoff(
        num_retries=ATTEMPTS - 1,
        initial_delay_secs=FIRST_DELAY_S,
        max_delay_secs=MAX_DELAY_S,
        retry_filter=is_transient,
        logger=note,
    )
    def attempt() -> T:
        return call()

    return attempt()
