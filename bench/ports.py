"""Loopback ports for the benchmark's servers and the tests', without "pick a free port, bind it later".

A port the kernel called free a moment ago may be taken by the time a server binds it: another process on
the shared machine (a parallel run, another checkout's tests, the benchmark) asked for one meanwhile, and
the server fails with "Address already in use". So each kind of server gets its port the way it allows:

- ``reserve_port()``: a socket bound now, held until a server serves on that very socket (``serve_wsgi``
  in-process, gunicorn by ``--bind fd://N``: ``reserved_socket(port)``), for a URL the app must know first;
- ``closed_port()``: where nothing listens, ever: one port held bound for the whole process but never
  listening, so a connection to it is refused and no other server can take it (a back end "down");
- ``on_free_port(start)``: for a server that is only told a number (redis-server, granian, ``app serve``'s
  processes, aiosmtpd): started on a free port, and again on another when it reports the address in use
  (``AddressInUse``, or ``OSError`` EADDRINUSE; ``said_address_in_use(log)`` reads a process's own words).

Standard library only. It lives in ``bench/`` because the benchmark must not import the tests; the tests
reach it as ``tests.support.ports``. The benchmark starts its servers through ``bench.ussd_hops.started``.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["AddressInUse", "closed_port", "free_port", "on_free_port", "on_free_ports", "release_port",
           "reserve_port", "reserved_socket", "said_address_in_use"]

HOST = "127.0.0.1"
ATTEMPTS = 5
T = TypeVar("T")

_guard = threading.Lock()
_reserved: dict[int, socket.socket] = {}
_closed: socket.socket | None = None


class AddressInUse(Exception):
    """A server could not bind the port it was given: another process took it first."""


def free_port() -> int:
    """A port free at this instant and no longer: only for ``on_free_port``'s starts, which retry."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def reserve_port() -> int:
    """A port bound now and kept for this process until a server takes its socket (``reserved_socket``).
    Not listening yet: until then a connection is refused, as if the server were not started."""
    held = socket.socket()   # no SO_REUSEADDR: no other socket may bind the port while it is held
    held.bind((HOST, 0))
    port = int(held.getsockname()[1])
    with _guard:
        _reserved[port] = held
    return port


def reserved_socket(port: int) -> socket.socket | None:
    """The socket ``reserve_port`` holds for ``port``, handed over listening (the caller closes it once its
    server has stopped); None for a port not reserved."""
    with _guard:
        held = _reserved.pop(port, None)
    if held is not None:
        held.listen(128)
    return held


def release_port(port: int) -> None:
    """Give back a reserved port no server took (a fixture's teardown)."""
    with _guard:
        held = _reserved.pop(port, None)
    if held is not None:
        held.close()


def closed_port() -> int:
    """A loopback port where nothing listens for as long as this process runs (connections are refused)."""
    global _closed
    with _guard:
        if _closed is None:
            _closed = socket.socket()   # no SO_REUSEADDR: no other socket may bind the port while it is held
            _closed.bind((HOST, 0))
        return int(_closed.getsockname()[1])


def said_address_in_use(output: str | Path) -> bool:
    """Whether a server's output (text, or the path of its log) says its address was taken."""
    text = output.read_text(errors="replace") if isinstance(output, Path) else output
    lowered = text.lower()
    return "address already in use" in lowered or "eaddrinuse" in lowered or "connection in use" in lowered


def on_free_ports(count: int, start: Callable[[list[int]], T], attempts: int = ATTEMPTS) -> T:
    """``start(ports)`` on ``count`` ports free when asked; on other ones when it raises ``AddressInUse``
    (or an ``OSError`` EADDRINUSE) because another process bound one first. ``start`` cleans up after
    itself when it fails."""
    for attempt in range(1, attempts + 1):
        try:
            return start([free_port() for _ in range(count)])
        except (AddressInUse, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno != errno.EADDRINUSE or attempt == attempts:
                raise
    raise AssertionError("unreachable")   # the loop returns or raises


def on_free_port(start: Callable[[int], T], attempts: int = ATTEMPTS) -> T:
    """``on_free_ports`` for a server of one port."""
    return on_free_ports(1, lambda ports: start(ports[0]), attempts)
