"""A redis-server of a test's own on a free port, to stop and start again (Redis lost mid-session,
restarted empty): the machine's shared Redis is never touched."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.storage.throttle import RedisThrottle

from .services import free_port, need_binary

__all__ = ["ThrowawayRedis", "throwaway_counter", "throwaway_redis"]


class ThrowawayRedis:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    need_binary("redis-server")   # under REQUIRE_SERVICES=1 a missing binary fails instead of skipping
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def throwaway_counter(throwaway_redis: ThrowawayRedis) -> Iterator[RedisThrottle]:
    """The product's throttle (the limits' counter) on the test's own Redis, to stop mid-test."""
    client = redis.Redis.from_url(throwaway_redis.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    yield RedisThrottle(client)
    client.close()
