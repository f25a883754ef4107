"""The Redis session store sends its per-hop scripts with little client work (``engine.lean_script``); it
must still survive what redis-py's own ``Script`` survives: a Redis that forgot the scripts, a Redis
restarted between two hops (the pooled connection is dead), and a Redis that stays down (the engine
answers "service unavailable", never an exception). A redis-server of the test's own is used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from engine import RedisSessionStore, Session
from engine.store import StoreUnavailable

from ..support.throwaway_redis import ThrowawayRedis

KEY = "ussd:ATUid_1"


def _session(node: str) -> Session:
    return Session(KEY, "ussd", "+221770000001", "main", "1", node, "fr", 1.0, 1.0)


@pytest.fixture
def store(throwaway_redis: ThrowawayRedis) -> Iterator[RedisSessionStore]:
    client = redis.Redis.from_url(throwaway_redis.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    yield RedisSessionStore(client)
    client.close()


def _hop(store: RedisSessionStore, node: str) -> str | None:
    """One hop: take the lock, read the session, save it on ``node``; the node it was on before."""
    with store.locked(KEY) as held:
        before = held.session.node if held.session is not None else None
        held.save(_session(node), 180)
    return before


def test_a_redis_that_forgot_the_scripts_still_keeps_the_session(store, throwaway_redis):
    assert _hop(store, "home") is None
    redis.Redis.from_url(throwaway_redis.url).script_flush()
    assert _hop(store, "balance") == "home"       # both scripts loaded again, the session read and saved
    assert _hop(store, "bills") == "balance"


def test_a_redis_restarted_between_two_hops_is_reached_again_on_the_next_hop(store, throwaway_redis):
    assert _hop(store, "home") is None
    throwaway_redis.stop()
    throwaway_redis.start()                       # same port, empty: the pooled connection is dead
    assert _hop(store, "balance") is None         # a fresh connection, the scripts loaded again
    assert _hop(store, "bills") == "balance"


def test_a_redis_that_stays_down_is_reported_unavailable_then_reached_once_back(store, throwaway_redis):
    assert _hop(store, "home") is None
    throwaway_redis.stop()
    with pytest.raises(StoreUnavailable):
        _hop(store, "balance")
    throwaway_redis.start()
    assert _hop(store, "balance") is None
