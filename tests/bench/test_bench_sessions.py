"""``make bench``'s hops of one session leave one after the other, as a gateway sends them.

wrk (``bench/hops.lua``) plays the balance cell against a small server on loopback that answers like the product
(``CON``, a slow answer for the balance) and writes down, per session, every text it got and whether another hop
of that session was in the server at the time. Before, a thread's 5 connections handed a session's next hop out
while a slow one of it was still in flight, and thread 0's first hop was spent on wrk's check of the script
(never sent), so that session's next hop skipped an input. A few seconds of load; skipped without wrk.
"""

from __future__ import annotations

import itertools
import random
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from bench.bench import Server, slots_for, wrk

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)")


class _Sessions:
    """What the server saw: the texts of each session in the order they came, and each hop that came while
    another of its session was being answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.texts: dict[str, list[str]] = defaultdict(list)
        self.busy: set[str] = set()
        self.overlapping: list[tuple[str, str]] = []


def _handler(seen: _Sessions) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive, as wrk's connections expect

        def do_POST(self) -> None:   # http.server's name for it
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode(), keep_blank_values=True)
            session, text = form["sessionId"][0], form["text"][0]
            with seen.lock:
                if session in seen.busy:
                    seen.overlapping.append((session, text))
                seen.busy.add(session)
                seen.texts[session].append(text)
            if text.endswith("1"):
                # the balance: a back-office call, now and then slow (as the real cell's p99 is 10x its p50)
                time.sleep(0.15 if random.random() < 0.05 else random.uniform(0.0, 0.01))
            with seen.lock:
                seen.busy.discard(session)
            body = b"CON Compte 1000001" if text.endswith("1") else b"CON ElecNet - 1000001"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass   # wrk drops its connections when the run ends: a reset, not a failure


@pytest.fixture
def gateway_like() -> Iterator[tuple[Server, _Sessions]]:
    seen = _Sessions()
    server = _QuietServer(("127.0.0.1", 0), _handler(seen))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server("fake", server.server_address[1], "/ussd", [], rejects="Choix invalide"), seen
    finally:
        server.shutdown()
        server.server_close()


def _continues(texts: list[str]) -> bool:
    """Whether each text is the one before plus one input, as a gateway's are (the first: the session's first
    input after the dial, which a real cell seeds beforehand)."""
    return texts[0] in ("", "1") and all(now.startswith(before + "*") and "*" not in now[len(before) + 1:]
                                         for before, now in itertools.pairwise(texts))


def test_the_balance_cell_never_has_two_hops_of_a_session_in_flight_nor_skips_an_input(gateway_like):
    server, seen = gateway_like
    result = wrk(server, "balance", 10, 3, "load", slots_for(10, "balance"), "t")
    assert result["requests"] > 200
    assert (result["bad"], result["overlap"]) == (0, 0)
    assert seen.overlapping == []
    broken = {session: texts[:4] for session, texts in seen.texts.items() if not _continues(texts)}
    assert broken == {}
