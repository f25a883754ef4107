"""The test suite's own isolation: a Redis database per run, cleaned without touching another run's,
and fault tests that fail (not skip) under REQUIRE_SERVICES=1 when the program they need is missing."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import requests

from tests.support.ports import AddressInUse, closed_port, on_free_port, reserve_port
from tests.support.services import (
    CLAIM_KEY,
    CLAIM_SECONDS,
    REDIS_TEST_URL,
    RUN_ID,
    clean_redis,
    need_binary,
    need_service,
    serve_wsgi,
)
from tests.support.throwaway_redis import ThrowawayRedis

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_run_gets_another_database_and_cleaning_ours_leaves_its_keys(redis_url: str) -> None:
    assert redis_url == REDIS_TEST_URL
    ours = redis.Redis.from_url(redis_url)
    assert ours.get(CLAIM_KEY) == RUN_ID.encode()
    # A second test process started now, with the same TEST_REDIS_URL, claims a database of its own.
    env = {**os.environ, "TEST_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    other = subprocess.Popen(
        [sys.executable, "-c", ("import redis, sys; from tests.support.services import REDIS_TEST_URL as u, RUN_ID; "
                                "redis.Redis.from_url(u).set('ussd:s:their-session', 'x'); print(u, RUN_ID, flush=True); "
                                "sys.stdin.readline()")],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert other.stdout is not None and other.stdin is not None
    their_url, their_run = other.stdout.readline().split()
    theirs = redis.Redis.from_url(their_url)
    try:
        assert their_url != redis_url
        ours.set("ussd:s:our-session", "y")
        clean_redis(ours)
        assert ours.get("ussd:s:our-session") is None and ours.get(CLAIM_KEY) == RUN_ID.encode()
        assert theirs.get("ussd:s:their-session") == b"x" and theirs.get(CLAIM_KEY) is not None
    finally:
        other.stdin.write("\n")
        other.stdin.close()
        other.wait(timeout=30)
    # At exit the other run emptied its own database and gave it back (a third run may claim it at once).
    assert theirs.get(CLAIM_KEY) != their_run.encode() and theirs.get("ussd:s:their-session") is None


def test_a_missing_program_skips_or_fails_under_require_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-program-7f3 is not installed"):
        need_binary("no-such-program-7f3")
    monkeypatch.setenv("REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_SERVICES=1"):
        need_binary("no-such-program-7f3")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_SERVICES=1"):
        need_service("Redis", "redis://127.0.0.1:1/0", 6379)
    assert need_binary("sh").endswith("/sh")


class OtherRun:
    """A test process (as a mutmut fork is) on a Redis of the test's own: it claims a database, writes a
    session there and waits, until told to go or killed."""

    def __init__(self, base_url: str) -> None:
        env = {**os.environ, "TEST_REDIS_URL": base_url, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", ("import redis, sys; from tests.support.services import REDIS_TEST_URL as u, "
                                    "RUN_ID; redis.Redis.from_url(u).set('ussd:s:a-session', 'x'); "
                                    "print(u, RUN_ID, flush=True); sys.stdin.readline()")],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        self.url, self.run_id = self.process.stdout.readline().split()

    def killed(self) -> None:
        """Killed with SIGKILL (no atexit, no release) and, as a busy mutmut parent may, not reaped yet."""
        self.process.kill()
        stat = Path(f"/proc/{self.process.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the killed process did not die"
            time.sleep(0.01)

    def leave(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("\n")
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def own_redis(throwaway_redis: ThrowawayRedis) -> str:
    throwaway_redis.start()
    return throwaway_redis.url


def test_a_killed_run_s_database_is_taken_over_at_once_and_a_live_run_s_never(own_redis: str) -> None:
    first = OtherRun(own_redis)
    second = OtherRun(own_redis)
    try:
        assert first.url == own_redis and second.url != own_redis    # alive: never shared
        first.killed()
        third = OtherRun(own_redis)             # the database of the killed run, at once, emptied of its keys
        try:
            assert third.url == own_redis
            held = redis.Redis.from_url(own_redis)
            assert held.get(CLAIM_KEY) == third.run_id.encode() and held.get("ussd:s:a-session") == b"x"
            assert held.dbsize() == 2          # the claim and the third run's own session, nothing of the first
        finally:
            third.leave()
    finally:
        for run in (first, second):
            run.leave()


def test_a_claim_whose_process_cannot_be_checked_waits_for_its_lease(own_redis: str) -> None:
    client = redis.Redis.from_url(own_redis)
    pid, rest = RUN_ID.split(".", 1)
    reused = f"{pid}.1{rest}"                  # our pid, another start time: a gone run whose pid was reused
    elsewhere = RUN_ID.rsplit("@", 1)[0] + "@another-machine/pid:[1]"
    older = "12345-0badc0de"                    # a run of a version whose claims said no more
    for claim in (reused, elsewhere, older):
        client.set(CLAIM_KEY, claim, ex=CLAIM_SECONDS)
        run = OtherRun(own_redis)
        try:
            assert (run.url == own_redis) is (claim == reused), claim
        finally:
            run.leave()


# ---------------------------------------------------------------- ports no other process can take meanwhile
def test_a_closed_port_refuses_connections_and_no_other_server_can_bind_it() -> None:
    port = closed_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with socket.socket() as other, pytest.raises(OSError) as taken:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as servers do: still refused
        other.bind(("127.0.0.1", port))
    assert taken.value.errno == errno.EADDRINUSE
    assert closed_port() == port   # one for the whole run


def test_a_reserved_port_is_held_until_served_and_then_served_on_that_very_socket() -> None:
    port = reserve_port()
    with socket.socket() as other, pytest.raises(OSError):
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))
    with pytest.raises(ConnectionRefusedError):      # not served yet: refused, as a server not started
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with serve_wsgi(_up, port) as url:
        assert url == f"http://127.0.0.1:{port}" and requests.get(url, timeout=5).text == "up"
    with pytest.raises(ValueError, match="not reserved"), serve_wsgi(_up, port):   # handed over once
        pass


def _up(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"up"]


def test_a_server_that_finds_its_port_taken_is_started_again_on_another() -> None:
    tried: list[int] = []

    def start(port: int) -> int:
        tried.append(port)
        if len(tried) < 3:
            raise AddressInUse(str(port))
        return port

    assert on_free_port(start) == tried[-1] and len(tried) == 3

    def always_taken(port: int) -> int:
        tried.append(port)
        raise AddressInUse(str(port))

    tried.clear()
    with pytest.raises(AddressInUse):
        on_free_port(always_taken, attempts=2)
    assert len(tried) == 2

    def refused(port: int) -> int:
        tried.append(port)
        raise PermissionError(errno.EACCES, "not allowed")

    tried.clear()
    with pytest.raises(PermissionError):                      # any other failure is not retried
        on_free_port(refused)
    assert len(tried) == 1
