"""Redis goes away in the middle of a session and comes back: the customer gets a polite END, and the
next dial works again, without restarting the engine. A throwaway redis-server of our own is used, so
the machine's shared Redis is never touched."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from app.factory import create_app

from ..support.engine import UssdPhone
from ..support.services import free_port, need_binary


class ThrowawayRedis:
    def __init__(self, tmp_path) -> None:
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
def throwaway_redis(tmp_path) -> Iterator[ThrowawayRedis]:
    need_binary("redis-server")   # under REQUIRE_SERVICES=1 a missing binary fails instead of skipping
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_lost_mid_session_then_back(settings, throwaway_redis):
    app = create_app(replace(settings, redis_url=throwaway_redis.url))
    client = app.test_client()
    phone = UssdPhone(client, "+221770000001")
    assert phone.dial().startswith("CON ElecNet - 1000001")
    throwaway_redis.stop()
    assert phone.answer("1") == ("END Service momentanément indisponible. Merci de réessayer plus tard.")
    assert phone.last_status == 200
    throwaway_redis.start()  # same port, empty: the session is gone, a new dial starts afresh
    again = UssdPhone(client, "+221770000001")
    assert again.dial().startswith("CON ElecNet - 1000001")
    assert again.answer("1").startswith("CON Compte 1000001\nA payer: 12 500 FCFA")
