"""``make bench``'s servers are started on ports free when asked, and again elsewhere when another process took
the port first, so a port race never fails a run, nor has it measure another process's server.

The race is made certain here: the first port offered is one a foreign HTTP server already listens on and
answers ``/healthz`` on (as another checkout's engine would). The bench's server either exits saying the
address is in use, or (as gunicorn does) stays alive retrying its bind while the foreign one answers.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import bench.ports
from bench.ussd_hops import child, started, wait_http

# A server told its port by number, answering "ours" on /healthz. --retry: it retries a taken port for 5 s,
# alive meanwhile, as gunicorn does ("Connection in use"); else it exits on it with the OSError's traceback.
SERVER = """
import http.server, sys, time
class Up(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "4"); self.end_headers(); self.wfile.write(b"ours")
    def log_message(self, *args): pass
port, retry = int(sys.argv[1]), "--retry" in sys.argv
for attempt in range(10 if retry else 1):
    try:
        server = http.server.HTTPServer(("127.0.0.1", port), Up)
        break
    except OSError:
        if not retry:
            raise
        print("Connection in use: retrying", flush=True)
        time.sleep(0.5)
else:
    sys.exit(1)
server.serve_forever()
"""


class _Foreign(BaseHTTPRequestHandler):
    def do_GET(self) -> None:   # http.server's name for it
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"foreign")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def taken_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A port another process's HTTP server holds, offered first as if it had been free a moment ago."""
    foreign = ThreadingHTTPServer(("127.0.0.1", 0), _Foreign)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    port = foreign.server_address[1]
    offered, free = iter([port]), bench.ports.free_port
    monkeypatch.setattr(bench.ports, "free_port", lambda: next(offered, None) or free())
    yield port
    foreign.shutdown()
    foreign.server_close()


@pytest.mark.parametrize("when_taken", ["exits", "retries"])
def test_a_bench_server_whose_port_was_taken_is_started_on_another_and_answers_there(
        taken_port: int, when_taken: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"

    def start(running: contextlib.ExitStack, ports: list[int]) -> int:
        command = [sys.executable, "-c", SERVER, str(ports[0]), *(["--retry"] if when_taken == "retries" else [])]
        wait_http(ports[0], "/healthz", running.enter_context(child(command, dict(os.environ), log)), log)
        return ports[0]

    with contextlib.ExitStack() as stack:
        port = started(stack, 1, start)
        assert port != taken_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.read() == b"ours"
