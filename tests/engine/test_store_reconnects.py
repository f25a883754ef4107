"""The Redis session store sends its per-hop scripts with little client work (``engine.lean_script``), on
a connection each thread keeps; it must still survive what redis-py's own ``Script`` survives: a Redis
that forgot the scripts, a Redis restarted between two hops (the kept connection is dead), a connection
lost before the answer came, and a Redis that stays down (the engine answers "service unavailable",
never an exception); and the connections it keeps must not pile up in Redis as threads come and go.
A redis-server of the test's own is used."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

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


def _store_connections(url: str) -> int:
    """Clients connected to the test's Redis whose last command was one of the store's scripts."""
    with redis.Redis.from_url(url) as client:
        return sum(1 for c in client.client_list() if c["cmd"] == "evalsha")


def test_a_thread_keeps_one_connection_for_all_its_hops(store, throwaway_redis):
    for node in ("home", "balance", "bills", "home") * 10:
        _hop(store, node)
    assert _store_connections(throwaway_redis.url) == 1


def test_threads_that_end_leave_no_connection_behind_in_redis(store, throwaway_redis):
    # a server's threads come and go (granian retires idle ones): their connections must go with them
    for _ in range(3):
        threads = [threading.Thread(target=_hop, args=(store, "home")) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    gc.collect()
    assert _hop(store, "bills") == "home"
    assert _store_connections(throwaway_redis.url) <= 2


def test_a_connection_lost_before_the_answer_is_sent_again_and_the_hop_goes_through(store, monkeypatch):
    assert _hop(store, "home") is None
    # the next lock request reaches Redis, then the connection drops before its answer is read
    lost: list[bool] = []
    real_read = redis.connection.Connection.read_response

    def read_then_lose(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = real_read(self, *args, **kwargs)
        if not lost:
            lost.append(True)
            self.disconnect()
            raise redis.ConnectionError("Connection closed by server.")
        return answer

    monkeypatch.setattr(redis.connection.Connection, "read_response", read_then_lose)
    assert _hop(store, "balance") == "home"       # sent again: the lock its own, not "busy"
    assert lost == [True]
    monkeypatch.undo()
    assert _hop(store, "bills") == "balance"
