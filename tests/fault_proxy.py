"""Fault-injecting proxies on loopback, in front of the local GCS and BigQuery emulators.

Real servers, real sockets, stdlib only; nothing here mocks a client. Two proxies:

* :class:`FaultProxy`, an HTTP/1.1 reverse proxy in front of an emulator's REST URL. It forwards
  each request (Content-Length or chunked body; keep-alive towards the client, one upstream
  connection per request) and, where a :class:`Rule` says so, answers with a fault instead:

  - ``429`` / ``500`` / ``503``: a JSON error body shaped like Google's
    (``{"error": {"code", "message", "status", "errors": [{"reason", ...}]}}``);
  - ``drop``: the request is read, then the connection closed without an answer;
  - ``lost``: the request is forwarded (the emulator acts on it), then the connection closed, so
    the answer is lost: the case that makes a retried insert dangerous;
  - ``scripted``: the rule's ``script`` answers, and may forward a body of its own making first:
    an answer no emulator gives, such as BigQuery refusing one row of a ``tabledata.insertAll``
    (:func:`refuse_rows`).

  Like any reverse proxy it sends the upstream's own Host and rewrites the upstream's address to
  its own in Location headers and JSON/multipart bodies (GCS's ``mediaLink``, resumable upload
  sessions), so that objects stored through it keep the emulator's address for later tests.

* :class:`GrpcCutProxy`, a TCP proxy for the BigQuery emulator's plaintext gRPC port that resets
  the connection once, after a given number of bytes went from server to client (mid ReadRows):
  the client sees UNAVAILABLE and must resume its stream from the offset it reached.

Both count what they injected, so that a test can prove faults happened (a test that injected
none proves nothing and must fail).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

STATUS_FAULTS = {
    "429": (429, "RESOURCE_EXHAUSTED", "rateLimitExceeded", "Rate limit exceeded (injected)."),
    "500": (500, "INTERNAL", "backendError", "Backend error (injected)."),
    "503": (503, "UNAVAILABLE", "backendError", "Service unavailable (injected)."),
}
# What a front end (a load balancer before the API) answers: an HTML page, no structured error.
GATEWAY_FAULTS = {
    "502": (502, "Bad Gateway"),
    "504": (504, "Gateway Timeout"),
}
DROP = "drop"  # no answer: the connection closes after the request was read, nothing forwarded
LOST = "lost"  # forwarded, then the connection closes: the server acted, the client never hears
SCRIPTED = "scripted"  # the rule's script answers, forwarding what it chooses
KINDS = (*STATUS_FAULTS, *GATEWAY_FAULTS, DROP, LOST, SCRIPTED)
MIXED = ("429", "500", "503", DROP)  # the faults a client can always retry without harm

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
_REWRITTEN_TYPES = ("application/json", "multipart/", "text/html")  # never object data
_UPSTREAM_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Request:
    """What a rule sees of a request."""

    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


Forward = Callable[[bytes], tuple[int, bytes]]  # a body sent on to the emulator -> its status and answer
Script = Callable[[Request, Forward], tuple[int, bytes]]  # a scripted answer: its status and JSON body


@dataclass
class Rule:
    """Which requests get which faults.

    A request matches when `method` (if set) is its method, `path` (a regex, if set) is found in
    its path, and `when` (if set) holds. Of the matching requests, the first `first` are faulted
    when `first` is set; otherwise each is faulted with probability `share`, drawn from the
    proxy's seeded generator. `limit` caps the rule's faults; `max_in_a_row` keeps one request
    (same method, path and query) from being faulted more often in a row than a client's retry
    budget allows. Kinds are taken in turn from `kinds`. Rules are tried in order, and the first
    that faults a request takes it: a later rule neither sees nor counts that request.
    """

    kinds: tuple[str, ...] = MIXED
    method: str | None = None
    path: str | None = None
    when: Callable[[Request], bool] | None = None
    share: float = 1.0
    first: int | None = None
    limit: int | None = None
    max_in_a_row: int = 2
    name: str = ""
    script: Script | None = None  # for the `scripted` kind
    matched: int = field(default=0, init=False)
    injected: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {KINDS}")
        if SCRIPTED in self.kinds and self.script is None:
            raise ValueError("a scripted rule needs its script")

    def matches(self, request: Request) -> bool:
        return (
            (self.method is None or request.method == self.method)
            and (self.path is None or re.search(self.path, request.path) is not None)
            and (self.when is None or self.when(request))
        )


@dataclass(frozen=True)
class Fault:
    seq: int  # the request's number, from 1, among all the proxy saw
    kind: str
    method: str
    path: str
    rule: str


class FaultProxy:
    """A threaded HTTP/1.1 reverse proxy on 127.0.0.1 that injects faults by seeded rules."""

    def __init__(self, upstream: str, rules: Iterable[Rule] = (), seed: int = 0, name: str = "proxy"):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"{upstream}: only plain-HTTP loopback upstreams are proxied")
        self.name = name
        self.upstream = upstream.rstrip("/")
        self._upstream_host, self._upstream_port = parts.hostname, parts.port or 80
        self.rules = list(rules)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._in_a_row: Counter[str] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()  # (method, path) -> seen
        self.faults: list[Fault] = []
        self.answers: list[tuple[str, str, int]] = []  # (method, path, status) the emulator answered
        self._seq = 0
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- what happened ----------------------------------------------------------------------

    def by_kind(self) -> dict[str, int]:
        counts = Counter(fault.kind for fault in self.faults)
        return {kind: counts[kind] for kind in KINDS if counts[kind]}

    def by_path(self) -> dict[str, int]:
        return dict(Counter(f"{fault.method} {_label(fault.path)}" for fault in self.faults))

    @property
    def injected(self) -> int:
        return len(self.faults)

    def answered(self, method: str, path: str, status: int) -> int:
        """How many `method` requests whose path matches the regex `path` the emulator answered with `status`."""
        return sum(1 for m, p, s in self.answers if m == method and s == status and re.search(path, p))

    @property
    def seen(self) -> int:
        return self._seq

    def assert_injected(self, at_least: int = 1) -> None:
        """Fails a test whose faults never happened: it would pass without testing anything."""
        assert self.injected >= at_least, (
            f"{self.name} injected {self.injected} fault(s) into {self.seen} request(s), "
            f"expected at least {at_least}: the test proves nothing"
        )

    # -- the decision -----------------------------------------------------------------------

    def _decide(self, request: Request) -> tuple[int, str | None, Rule | None]:
        with self._lock:
            self._seq += 1
            seq = self._seq
            self.requests[(request.method, request.path)] += 1
            key = f"{request.method} {request.target}"
            for rule in self.rules:
                if not rule.matches(request):
                    continue
                rule.matched += 1
                if rule.limit is not None and rule.injected >= rule.limit:
                    continue
                if self._in_a_row[key] >= rule.max_in_a_row:
                    continue
                first = rule.first
                hit = rule.matched <= first if first is not None else self._random.random() < rule.share
                if not hit:
                    continue
                kind = rule.kinds[rule.injected % len(rule.kinds)]
                rule.injected += 1
                self._in_a_row[key] += 1
                label = rule.name or rule.path or rule.method or "any"
                self.faults.append(Fault(seq, kind, request.method, request.path, label))
                return seq, kind, rule
            self._in_a_row.pop(key, None)
            return seq, None, None

    # -- the HTTP side ----------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # the proxy's own log would be noise
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        path, _, query = handler.path.partition("?")
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = Request(handler.command, path, query, headers, body)
        _, kind, rule = self._decide(request)
        if kind == SCRIPTED and rule is not None and rule.script is not None:
            self._answer_scripted(handler, request, rule.script)
            return
        if kind in STATUS_FAULTS:
            self._answer_error(handler, kind)
            return
        if kind in GATEWAY_FAULTS:
            self._answer_gateway(handler, kind)
            return
        if kind == DROP:
            _abort(handler)
            return
        try:
            status, reason, response_headers, response_body = self._forward(handler, request)
        except OSError as error:  # the emulator went away: say so, as a gateway would
            self._answer_error(handler, "503", f"upstream unreachable: {error}")
            return
        with self._lock:
            self.answers.append((request.method, request.path, status))
        if kind == LOST:
            _abort(handler)
            return
        handler.send_response(status, reason)
        for name, value in response_headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(response_body)))
        handler.end_headers()
        if handler.command != "HEAD" and response_body:
            handler.wfile.write(response_body)

    def _forward(self, handler: BaseHTTPRequestHandler, request: Request):
        connection = http.client.HTTPConnection(self._upstream_host, self._upstream_port, timeout=_UPSTREAM_TIMEOUT_S)
        try:
            connection.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", f"{self._upstream_host}:{self._upstream_port}")
            for name, value in handler.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("host", "content-length"):
                    connection.putheader(name, value)
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(request.body)))
            connection.putheader("Connection", "close")
            connection.endheaders(request.body or None)
            response = connection.getresponse()
            body = response.read()
            headers = []
            for name, value in response.getheaders():
                lower = name.lower()
                if lower in _HOP_BY_HOP or lower == "content-length":
                    continue
                if lower == "location":
                    value = value.replace(self.upstream, self.url)
                headers.append((name, value))
            content_type = response.getheader("Content-Type", "") or ""
            if body and any(content_type.startswith(kind) for kind in _REWRITTEN_TYPES):
                body = body.replace(self.upstream.encode(), self.url.encode())
            return response.status, response.reason, headers, body
        finally:
            connection.close()

    def _answer_scripted(self, handler: BaseHTTPRequestHandler, request: Request, script: Script) -> None:
        def forward(body: bytes) -> tuple[int, bytes]:
            status, _, _, answer = self._forward(handler, dataclasses.replace(request, body=body))
            with self._lock:
                self.answers.append((request.method, request.path, status))
            return status, answer

        status, body = script(request, forward)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _answer_gateway(self, handler: BaseHTTPRequestHandler, kind: str) -> None:
        code, reason = GATEWAY_FAULTS[kind]
        body = _gateway_page(code, reason)
        handler.send_response(code, reason)
        handler.send_header("Content-Type", "text/html; charset=UTF-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def _answer_error(self, handler: BaseHTTPRequestHandler, kind: str, message: str | None = None) -> None:
        code, status, reason, default_message = STATUS_FAULTS[kind]
        text = message or default_message
        body = json.dumps(
            {
                "error": {
                    "code": code,
                    "message": text,
                    "status": status,
                    "errors": [{"message": text, "domain": "global", "reason": reason}],
                }
            }
        ).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)


def refuse_rows(reason_for: Callable[[dict], tuple[str, str, str] | None]) -> Script:
    """A script for `tabledata.insertAll` that answers as BigQuery does for rows it refuses, with
    skipInvalidRows: `reason_for(row)` gives (reason, location, message) for a row to refuse, None for one
    to insert. The rows to insert are forwarded to the emulator; the refused ones never reach it, and the
    answer lists them in `insertErrors` at their own index, beside any error the emulator reported."""

    def script(request: Request, forward: Forward) -> tuple[int, bytes]:
        body = json.loads(request.body)
        kept: list[int] = []
        refused = []
        for index, row in enumerate(body.get("rows", [])):
            refusal = reason_for(row["json"])
            if refusal is None:
                kept.append(index)
                continue
            reason, location, message = refusal
            error = {"reason": reason, "location": location, "debugInfo": "", "message": message}
            refused.append({"index": index, "errors": [error]})
        answer: dict = {"kind": "bigquery#tableDataInsertAllResponse"}
        if kept:
            status, data = forward(json.dumps(dict(body, rows=[body["rows"][index] for index in kept])).encode())
            if status != 200:
                return status, data
            answer = json.loads(data or b"{}")
            for entry in answer.get("insertErrors", []):
                entry["index"] = kept[entry["index"]]
        errors = sorted(answer.get("insertErrors", []) + refused, key=lambda entry: entry["index"])
        if errors:
            answer["insertErrors"] = errors
        return 200, json.dumps(answer).encode()

    return script


class _QuietServer(ThreadingHTTPServer):
    """Aborted connections are the point here, not errors worth a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


def _gateway_page(code: int, reason: str) -> bytes:
    return (
        f"<!DOCTYPE html>\n<html lang=en><title>Error {code} ({reason})</title>"
        f"<p><b>{code}.</b> <ins>That's an error.</ins><p>The server encountered a temporary error "
        "and could not complete your request.<p>Please try again in 30 seconds. <ins>That's all we know.</ins>"
    ).encode()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, whether sent with Content-Length or chunked."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            size_line = handler.rfile.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # the CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _abort(handler: BaseHTTPRequestHandler) -> None:
    """Closes the client's connection with nothing sent: a reset, not a clean end of the answer."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


_ID_LIKE = re.compile(r"[0-9a-f]{16,}|beam_bq_job_[^/]+|bqemu_[0-9a-f]+|[^/]*beam-temp[^/]*")


def _label(path: str) -> str:
    """A request path with its ids folded, so that faults group by endpoint in a report."""
    parts = path.split("/")
    if "o" in parts:  # /storage/v1/b/BUCKET/o/OBJECT...: object names are data
        index = parts.index("o")
        parts = [*parts[: index + 1], "OBJECT"] if index + 1 < len(parts) else parts
    return _ID_LIKE.sub("ID", "/".join(parts))


# --------------------------------------------------------------------------------------------
# gRPC: a TCP proxy that cuts a stream once
# --------------------------------------------------------------------------------------------


class GrpcCutProxy:
    """A TCP proxy on 127.0.0.1 in front of a plaintext gRPC server that resets one connection once
    `cut_after_bytes` bytes have gone from server to client on it (then forwards everything).

    Set `cut_after_bytes` above what the calls before a stream send (a CreateReadSession answer is
    a few KiB) and below the stream's size, and the reset lands mid ReadRows."""

    def __init__(self, upstream: str, cut_after_bytes: int, cuts: int = 1, name: str = "grpc-proxy"):
        host, _, port = upstream.rpartition(":")
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"{upstream}: only loopback upstreams are proxied")
        self.name = name
        self._upstream = (host, int(port))
        self.cut_after_bytes = cut_after_bytes
        self._cuts_left = cuts
        self._lock = threading.Lock()
        self.cuts: list[int] = []  # server->client bytes of the connection when it was cut
        self.connections = 0
        self.bytes_after_cut = 0  # server->client bytes on connections opened after a cut
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def injected(self) -> int:
        return len(self.cuts)

    def by_kind(self) -> dict[str, int]:
        return {"cut": len(self.cuts)} if self.cuts else {}

    def assert_injected(self, at_least: int = 1) -> None:
        assert self.injected >= at_least, (
            f"{self.name} cut {self.injected} stream(s) over {self.connections} connection(s), expected "
            f"{at_least}: the stream never reached {self.cut_after_bytes:,} bytes, the test proves nothing"
        )

    def start(self) -> GrpcCutProxy:
        self._thread = threading.Thread(target=self._accept, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in list(self._open):
                _close_now(sock)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> GrpcCutProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                after_cut = bool(self.cuts)
                self._open.update((client, server))
            connection = _Connection(self, client, server, after_cut)
            threading.Thread(target=connection.pump_up, daemon=True).start()
            threading.Thread(target=connection.pump_down, daemon=True).start()

    def _should_cut(self, sent: int) -> bool:
        with self._lock:
            if self._cuts_left > 0 and sent >= self.cut_after_bytes:
                self._cuts_left -= 1
                self.cuts.append(sent)
                return True
            return False


def _close_now(sock: socket.socket, reset: bool = False) -> None:
    """Closes a socket that another thread may be blocked reading.

    close() alone would not do: the blocked recv() keeps the socket open, nothing reaches the peer,
    and a gRPC client waits on its stream for ever. shutdown(SHUT_RD) wakes the reader first; with
    `reset`, SO_LINGER 0 makes the close a TCP reset, as a connection lost mid-stream looks."""
    with contextlib.suppress(OSError):
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD if reset else socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class _Connection:
    def __init__(self, proxy: GrpcCutProxy, client: socket.socket, server: socket.socket, after_cut: bool):
        self._proxy = proxy
        self._client = client
        self._server = server
        self._after_cut = after_cut
        self._down = 0

    def _close(self, reset: bool = False) -> None:
        for sock in (self._client, self._server):
            _close_now(sock, reset)
        with self._proxy._lock:
            self._proxy._open.discard(self._client)
            self._proxy._open.discard(self._server)

    def pump_up(self) -> None:
        """Client -> server, untouched."""
        try:
            while data := self._client.recv(65536):
                self._server.sendall(data)
        except OSError:
            pass
        self._close()

    def pump_down(self) -> None:
        """Server -> client, counted; reset mid-stream once the proxy's threshold is passed."""
        try:
            while data := self._server.recv(65536):
                limit = self._proxy.cut_after_bytes
                if self._down < limit <= self._down + len(data) and self._proxy._should_cut(self._down + len(data)):
                    self._client.sendall(data[: limit - self._down])
                    self._close(reset=True)
                    return
                self._client.sendall(data)
                self._down += len(data)
                if self._after_cut:
                    with self._proxy._lock:
                        self._proxy.bytes_after_cut += len(data)
        except OSError:
            pass
        self._close()
