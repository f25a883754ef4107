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

from .ports import AddressInUse, on_free_port, said_address_in_use
from .services import need_binary

__all__ = ["ThrowawayRedis", "throwaway_counter", "throwaway_redis"]


class ThrowawayRedis:
    def __init__(self, tmp_path: Path) -> None:
        self.port = 0   # chosen by the first start
        self.dir = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """The first start on a free port (another if redis-server finds it taken meanwhile: it only takes a
        number); a restart on the same port, the one the test's clients know. Running already: nothing to do."""
        if self.process is not None and self.process.poll() is None:
            return
        if self.port:
            self._start_on(self.port)
        else:
            on_free_port(self._start_on)

    def _start_on(self, port: int) -> None:
        log = self.dir / f"redis-{port}.log"
        with log.open("wb") as output:
            self.process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                                            stdout=output, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1.0)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    # ours, not a server another process started on the port meanwhile
                    if client.info("server")["process_id"] == self.process.pid:
                        self.port = port
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        if said_address_in_use(log):
            raise AddressInUse(f"127.0.0.1:{port}")
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
