"""Headless Chromium driven over the DevTools protocol, for the tests that look at a page as a browser shows it.

The browser talks over a pipe (`--remote-debugging-pipe`: commands on its fd 3, replies and events on its
fd 4, each a JSON message ended by a NUL byte), so no port, websocket library or driver is needed: the
Debian package `chromium` and the standard library. `tests.tools.CHROMIUM` is the browser found on PATH, or
None (its absence a skip, or a failure where CI is set).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.tools import CHROMIUM

FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",  # no update, safe-browsing or metrics requests of its own
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--remote-debugging-pipe",
)


class Browser:
    """One headless Chromium with one page; `with Browser(profile) as browser: browser.open(path)`."""

    def __init__(self, profile: Path, timeout_s: float = 60.0):
        assert CHROMIUM is not None, "no chromium on PATH"
        self._timeout_s = timeout_s
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()
        # Moved above 9 so that the shell's 3< and 4> cannot overwrite one of them before it is duplicated.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        for fd in (to_browser, from_browser):
            os.close(fd)
        self._process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{ends[0]} 4>&{ends[1]}', CHROMIUM, *FLAGS, f"--user-data-dir={profile}"],
            pass_fds=ends,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in ends:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Log", "Runtime"):
            self.send(f"{domain}.enable")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        os.close(self._commands)
        os.close(self._replies)
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """A browser-level command's result (or one of the page's session, `session`)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply.get("result", {})
            self.events.append(reply)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page."""
        return self.call(method, self._session, **params)

    def open(self, path: Path, width: int = 1280, height: int = 900) -> None:
        """Loads the file at `path` in a window `width` CSS pixels wide, and waits for its load event; the events
        kept from then on are this page's."""
        self.events.clear()
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.send("Page.navigate", url=path.resolve().as_uri())
        while not any(event.get("method") == "Page.loadEventFired" for event in self.events):
            self.events.append(self._read())

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (run by DevTools: the page's own policy forbids scripts)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def screenshot(self, x: float, y: float, width: float, height: float) -> bytes:
        """A PNG of the page's region at (x, y) in CSS pixels from the document's top left, scrolled there or not."""
        clip = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
        shot = self.send("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        return base64.b64decode(shot["data"])

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for, itself included, refused ones too."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def refused(self) -> dict[str, str]:
        """The requests the browser refused to send, by URL, with why (`csp`: the page's policy forbids it)."""
        urls = {
            event["params"]["requestId"]: event["params"]["request"]["url"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        }
        return {
            urls[event["params"]["requestId"]]: event["params"]["blockedReason"]
            for event in self.events
            if event.get("method") == "Network.loadingFailed" and event["params"].get("blockedReason")
        }

    def logged(self) -> list[dict[str, Any]]:
        """The browser's log entries about the page: refused loads, policy violations, errors."""
        return [event["params"]["entry"] for event in self.events if event.get("method") == "Log.entryAdded"]

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self._timeout_s
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._replies], [], [], max(left, 0))
            assert ready, f"chromium said nothing for {self._timeout_s:.0f} s"
            chunk = os.read(self._replies, 1 << 20)
            assert chunk, f"chromium closed its pipe (exit status {self._process.poll()})"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)
