"""Loopback only: imported at start-up by a process launched by the test harness (its folder is put
on PYTHONPATH), it refuses and records every name lookup and connection that would leave 127.0.0.1.

A launch that reached for a real Google endpoint (say, Dataflow or the metadata server at
169.254.169.254) would otherwise fail slowly or pass by luck; here it fails at once and the
harness reads what was attempted from the file named by LAUNCH_GUARD_LOG. Python's audit hooks
see the socket module, which every HTTP client used at launch goes through (requests, httplib2,
urllib3); gRPC's C core does not, and nothing at launch uses gRPC.
"""

import ipaddress
import os
import socket
import sys

_LOG = os.environ.get("LAUNCH_GUARD_LOG")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host is None or str(host).lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(what + "\n")
    raise OSError(f"launch guard: {what} leaves the loopback interface")


def _audit(event: str, args) -> None:
    if event == "socket.getaddrinfo":
        if not _is_loopback(args[0]):
            _refuse(f"getaddrinfo {args[0]}:{args[1]}")
    elif event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            _refuse(f"connect {address[0]}:{address[1]}")


sys.addaudithook(_audit)
