"""Engine fixtures: the demo flow on every session store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from engine import Engine, FlowSet, MemorySessionStore, RedisSessionStore, Reply, SessionStore, Turn
from menus import load_menus

from ..support.services import REDIS_TEST_URL, clean_redis, need_service
from .fakes import CountingSteps

DEMO = Path(__file__).parent / "flows" / "demo.yaml"


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore()
        return
    need_service("Redis", REDIS_TEST_URL, 6379)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    clean_redis(client)
    yield RedisSessionStore(client)
    clean_redis(client)
    client.close()


@pytest.fixture
def steps() -> CountingSteps:
    return CountingSteps()


@pytest.fixture
def engine(store: SessionStore, steps: CountingSteps) -> Engine:
    return Engine(FlowSet(load_menus(DEMO)), store, steps)


class Handset:
    """Sends hops the way the USSD adapter builds them: cumulative text, newest input."""

    def __init__(self, engine: Engine, session: str = "s1", channel: str = "ussd",
                 msisdn: str = "+221770000001") -> None:
        self.engine, self.session, self.channel, self.msisdn = engine, session, channel, msisdn
        self.inputs: list[str] = []

    def hop(self, text: str) -> Reply:
        segments = tuple(text.split("*")) if text else ()
        return self.engine.handle(Turn(self.channel, self.msisdn, f"{self.channel}:{self.session}",
                                       segments[-1] if segments else None, text, segments,
                                       cumulative=self.channel == "ussd"))

    def dial(self, *preset: str) -> Reply:
        self.inputs = list(preset)
        return self.hop("*".join(self.inputs))

    def answer(self, value: str) -> Reply:
        self.inputs.append(value)
        return self.hop("*".join(self.inputs))


@pytest.fixture
def handset(engine: Engine) -> Callable[..., Handset]:
    return lambda **kw: Handset(engine, **kw)
