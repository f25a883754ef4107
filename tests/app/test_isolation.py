"""The test suite's own isolation: a Redis database per run, cleaned without touching another run's,
and fault tests that fail (not skip) under REQUIRE_SERVICES=1 when the program they need is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support.services import CLAIM_KEY, REDIS_TEST_URL, RUN_ID, clean_redis, need_binary, need_service

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
