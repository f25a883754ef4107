"""The HTTP servers the engine can run under, and the command line of each: one definition for ``app serve``
(``WEB_SERVER``, ``WEB_CONCURRENCY`` workers of ``WEB_THREADS`` threads) and for the benchmark that chose the
default (``bench/servers.py``, README "Benchmark").

* ``granian`` (the default): granian (Rust HTTP server, WSGI interface), worker processes of 4 blocking
  threads (the Python threads that run the app; granian's own threads read and write the sockets, keep-alive
  connections). Measured against both gunicorn kinds on this machine, it served the dial and the page turn at
  1.3-1.8x gthread's requests/s for a third less CPU per hop, and the balance at 1.0-1.3x.
* ``gthread``: gunicorn, worker processes of 4 threads each (keep-alive connections).
* ``sync``: gunicorn, one request at a time per worker process (the connection closed after each answer).

Threads per worker are a trade: with one, a hop never waits for the GIL behind another thread's hop (the
engine's own time under load is its time alone), but a worker is held for the whole of a back-end call
(a slow billing system then stalls every hop behind it); with four, three other hops go on meanwhile.

gunicorn runs with ``app/gunicorn_conf.py`` (numbers masked in every log line, metrics summed over workers).
granian's access line (its default format: the path without the query string, status, milliseconds) is a
record of the ``granian.access`` logger in the worker, where ``create_app`` installed the masking: it leaves
masked as every other line does (``tests/app/test_log_privacy.py`` runs a session through each server).
"""

from __future__ import annotations

import sys
from typing import Final

__all__ = ["DEFAULT_SERVER", "LABELS", "SERVERS", "THREADS", "engine_command"]

SERVERS: Final = ("granian", "gthread", "sync")
DEFAULT_SERVER: Final = "granian"
LABELS: Final = {"gthread": "gunicorn gthread", "sync": "gunicorn sync", "granian": "granian"}  # app serve's banner
THREADS: Final = 4


def engine_command(server: str, host: str, port: int | str, workers: int | str,
                   access_log: bool = True, threads: int = THREADS) -> list[str]:
    """The command that serves ``wsgi:app`` under ``server`` on ``host:port`` with ``workers`` processes
    (of ``threads`` threads each, but for sync)."""
    if server not in SERVERS:
        raise ValueError(f"unknown server '{server}': one of {', '.join(SERVERS)}")
    if server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", host, "--port", str(port),
                "--workers", str(workers), "--blocking-threads", str(threads), "--log-level", "info",
                # headers past 64 KB are refused (431) before the app: gunicorn refuses past 8 KB a field
                "--http1-buffer-size", "65536",
                "--access-log" if access_log else "--no-access-log", "wsgi:app"]
    kind = ["--threads", str(threads)] if server == "gthread" else ["--worker-class", "sync"]
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers), *kind,
            *(["--access-logfile", "-"] if access_log else []), "--config", "python:app.gunicorn_conf", "wsgi:app"]
