"""Which faults the launch and the job retry themselves, and how often: transient ones only, a bounded number."""

from __future__ import annotations

import http.client

import pytest
import requests
from apache_beam.utils import retry as beam_retry
from google.api_core import exceptions

from pipeline.job import retries


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """Beam's backoff helper sleeps through its Clock: counted here instead of waited."""
    slept: list[float] = []
    monkeypatch.setattr(beam_retry.Clock, "sleep", lambda self, seconds: slept.append(seconds))
    return slept


@pytest.mark.parametrize(
    "error",
    [
        exceptions.GatewayTimeout("bare 504, no reason"),  # what google-cloud-bigquery does not retry
        exceptions.ServiceUnavailable("503"),
        exceptions.TooManyRequests("429"),
        exceptions.InternalServerError("500"),
        exceptions.BadGateway("502"),
        exceptions.Forbidden("403", errors=[{"reason": "rateLimitExceeded"}]),  # BigQuery's rate limit
        ConnectionResetError(104, "Connection reset by peer"),
        http.client.RemoteDisconnected("Remote end closed connection without response"),
        requests.exceptions.ConnectionError("dropped"),
        TimeoutError("timed out"),
    ],
)
def test_transient_faults_are_retried(error):
    assert retries.is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        exceptions.NotFound("no such table"),
        exceptions.BadRequest("Syntax error"),
        exceptions.Forbidden("403", errors=[{"reason": "accessDenied"}]),
        exceptions.Conflict("already exists"),
        exceptions.RetryError("the client's own retries ran out", cause=None),
        requests.exceptions.SSLError("certificate verify failed"),
        ValueError("a bug"),
    ],
)
def test_mistakes_and_bugs_are_not(error):
    assert not retries.is_transient(error)


def test_a_transient_fault_is_retried_with_growing_waits_until_the_call_succeeds(no_waiting):
    answers = iter([exceptions.GatewayTimeout("504"), ConnectionResetError(), exceptions.ServiceUnavailable("503")])
    before = retries.RETRIES.total

    def call() -> str:
        error = next(answers, None)
        if error is not None:
            raise error
        return "table"

    assert retries.retrying(call, "tables.get") == "table"
    assert retries.RETRIES.total - before == 3
    assert len(no_waiting) == 3 and no_waiting[0] < no_waiting[-1]


def test_retries_stop_after_the_last_attempt_with_the_last_error(no_waiting):
    calls = []

    def call():
        calls.append(1)
        raise exceptions.GatewayTimeout(f"504 #{len(calls)}")

    with pytest.raises(exceptions.GatewayTimeout, match=f"504 #{retries.ATTEMPTS}"):
        retries.retrying(call, "datasets.get")
    assert len(calls) == retries.ATTEMPTS


def test_a_mistake_is_raised_at_once(no_waiting):
    calls = []

    def call():
        calls.append(1)
        raise exceptions.NotFound("no such table")

    with pytest.raises(exceptions.NotFound):
        retries.retrying(call, "tables.get")
    assert calls == [1] and no_waiting == []
