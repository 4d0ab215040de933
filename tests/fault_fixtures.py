"""Pytest plugin: the emulators behind fault-injecting proxies for one test, and a report of the faults.

`faulty_clouds` points this process's real clients (google-cloud-storage, hence Beam's GcsIO and
FileSystems; google-cloud-bigquery; Beam's apitools BigQuery client; the Storage Read API's gRPC
client) at proxies in front of the session's emulators, for as long as its `through(...)` context
lasts, then back at the emulators. Nothing is cached across that switch: Beam makes a new GcsIO
(hence a storage.Client, which reads STORAGE_EMULATOR_HOST) per filesystem call, a new apitools
BigqueryV2 (whose BASE_URL is patched) and google-cloud-bigquery Client per wrapper, and a new
BigQueryReadClient per read; the credentials cache is reset by `point_clients_at_emulators`.

Each test's faults, by kind, and whether the project's own retry (`pipeline.job.retries`) had to act,
are printed in a "transient faults" section at the end of the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import types
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import pytest

from tests.emulators import CloudEmulators, point_clients_at_emulators
from tests.fault_proxy import FaultProxy, GrpcCutProxy, Rule

_REPORT_PROPERTY = "transient faults"
_OUTCOME_KEY = pytest.StashKey[str]()
BACKOFF_SCALE = 0.05  # client back-off sleeps run 20x faster: same retries, same schedule, shorter waits


def compress_backoff(mp: pytest.MonkeyPatch, scale: float = BACKOFF_SCALE) -> None:
    """Shortens every back-off sleep of the client libraries' retry loops by `scale`.

    What is retried, how often and on which schedule stays the clients' own; only the wall-clock
    waits shrink (google-api-core's first wait is up to 1 s, apitools' 2 s, Beam's 5 s), so that
    dozens of faults fit in a test of seconds. Deadlines still count real time, so they only get
    more generous; the proxies' `max_in_a_row` keeps every fault within the clients' attempt budgets.
    """
    from apache_beam.utils import retry as beam_retry
    from apitools.base.py import http_wrapper
    from google.api_core.retry import retry_streaming, retry_unary

    fast_time = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("__")})
    fast_time.sleep = lambda seconds: time.sleep(seconds * scale)
    for module in (retry_unary, retry_streaming, http_wrapper):
        mp.setattr(module, "time", fast_time)
    mp.setattr(beam_retry.Clock, "sleep", lambda self, seconds: time.sleep(seconds * scale))


@dataclasses.dataclass
class Proxies:
    gcs: FaultProxy
    bq: FaultProxy
    grpc: GrpcCutProxy | None = None

    def all(self) -> list[FaultProxy | GrpcCutProxy]:
        return [proxy for proxy in (self.gcs, self.bq, self.grpc) if proxy is not None]

    @property
    def injected(self) -> int:
        return sum(proxy.injected for proxy in self.all())


class FaultyClouds:
    """Opens proxies in front of the emulators; records what they injected for the run's report."""

    def __init__(self, emu: CloudEmulators, nodeid: str):
        self.emu = emu
        self._nodeid = nodeid
        self.used: list[Proxies] = []
        self._own_retries_before = _own_retries()

    @contextlib.contextmanager
    def through(
        self,
        gcs: Iterable[Rule] = (),
        bq: Iterable[Rule] = (),
        grpc_cut_after: int | None = None,
        seed: int = 20,
        backoff_scale: float = BACKOFF_SCALE,
    ) -> Iterator[Proxies]:
        """Every GCS and BigQuery request of this process goes through proxies while this lasts."""
        with contextlib.ExitStack() as stack:
            gcs_proxy = stack.enter_context(FaultProxy(self.emu.gcs.url, gcs, seed=seed, name="gcs"))
            bq_proxy = stack.enter_context(FaultProxy(self.emu.bq.rest_url, bq, seed=seed + 1, name="bigquery"))
            grpc_proxy = None
            if grpc_cut_after is not None:
                grpc_proxy = stack.enter_context(GrpcCutProxy(self.emu.bq.grpc_target, grpc_cut_after, name="grpc"))
            proxies = Proxies(gcs_proxy, bq_proxy, grpc_proxy)
            self.used.append(proxies)
            mp = stack.enter_context(pytest.MonkeyPatch.context())
            bq = dataclasses.replace(self.emu.bq, rest_url=bq_proxy.url)
            if grpc_proxy is not None:
                bq = dataclasses.replace(bq, grpc_target=grpc_proxy.target)
            point_clients_at_emulators(mp, dataclasses.replace(self.emu.gcs, url=gcs_proxy.url), bq)
            if backoff_scale != 1:
                compress_backoff(mp, backoff_scale)
            yield proxies

    @property
    def injected(self) -> int:
        return sum(proxies.injected for proxies in self.used)

    @property
    def own_retries(self) -> int:
        """How many times `pipeline.job.retries` retried a call during this test."""
        return _own_retries() - self._own_retries_before

    def report_line(self, outcome: str) -> str:
        parts = []
        for proxies in self.used:
            for proxy in proxies.all():
                if proxy.injected:
                    kinds = ", ".join(f"{kind} {count}" for kind, count in proxy.by_kind().items())
                    seen = f"/{proxy.seen}" if isinstance(proxy, FaultProxy) else ""
                    parts.append(f"{proxy.name} {proxy.injected}{seen} ({kinds})")
        faults = "; ".join(parts) or "NO FAULTS"
        own = f"our retries: {self.own_retries}"
        return f"{self._nodeid.rsplit('::', 1)[-1]} [{outcome}]: {faults}; {own}"


def _own_retries() -> int:
    from pipeline.job import retries

    return retries.RETRIES.total


@pytest.fixture
def faulty_clouds(cloud_emulators: CloudEmulators, request: pytest.FixtureRequest) -> Iterator[FaultyClouds]:
    clouds = FaultyClouds(cloud_emulators, request.node.nodeid)
    yield clouds
    outcome = request.node.stash.get(_OUTCOME_KEY, "not run")
    # As a user property, the line reaches the run's summary from a pytest-xdist worker too.
    request.node.user_properties.append((_REPORT_PROPERTY, clouds.report_line(outcome)))
    if clouds.used and clouds.injected == 0:
        pytest.fail("the proxies injected no fault: this test proved nothing", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:
    """Notes each test's outcome for its line in the report (written at fixture teardown)."""
    report = (yield).get_result()
    if report.when == "call":
        item.stash[_OUTCOME_KEY] = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    lines = list(
        dict.fromkeys(
            value
            for reports in terminalreporter.stats.values()
            for report in reports
            for name, value in getattr(report, "user_properties", ())
            if name == _REPORT_PROPERTY
        )
    )
    if lines:
        terminalreporter.section("transient faults injected (proxy requests faulted/seen)")
        for line in lines:
            terminalreporter.write_line(line)
