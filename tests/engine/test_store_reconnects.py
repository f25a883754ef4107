"""The Redis session store sends its per-hop scripts with little client work (``engine.lean_script``), on
a connection each thread keeps; it must still survive what redis-py's own ``Script`` survives: a Redis
that forgot the scripts, a Redis restarted between two hops (the kept connection is dead), a connection
lost before the answer came, and a Redis that stays down (the engine answers "service unavailable",
never an exception); and the connections it keeps must not pile up in Redis as threads come and go.
A redis-server of the test's own is used."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from engine import RedisSessionStore, Session
from engine.store import StoreUnavailable

from ..support.polling import until
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
        return sum(1 for c in client.client_list() if c["cmd"] in ("evalsha", "eval"))


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


def test_a_connection_lost_before_the_answer_is_sent_again_and_the_hop_goes_through(
        store: RedisSessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
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


# A hop's save goes out before its answer without waiting for Redis's reply, which the thread's connection
# reads before its next command: the hop waits for one round trip, not two.

USER_KEY = "sms:+221770000001"   # a channel keyed by the caller: the key holds a phone number


def _user_session(node: str) -> Session:
    return Session(USER_KEY, "sms", "+221770000001", "main", "1", node, "fr", 1.0, 1.0)


def _eventually(check: Callable[[], bool]) -> bool:
    """Redis runs commands from several connections in the order its event loop reads them: a command
    sent on another connection just after the save may be run first."""
    return bool(until(check, seconds=2.0, pause=0.001))


def test_a_hops_save_reaches_redis_without_waiting_for_the_threads_next_call(store, throwaway_redis):
    assert _hop(store, "home") is None
    other = redis.Redis.from_url(throwaway_redis.url)

    def saved_and_released() -> bool:
        saved = other.get(f"conv:s:{KEY}")
        return saved is not None and Session.decode(saved, KEY).node == "home" and not other.exists(f"conv:l:{KEY}")

    assert _eventually(saved_and_released)
    other.close()


def test_a_save_redis_refuses_is_logged_masked_and_the_next_hop_finds_the_screen_before(throwaway_redis, caplog):
    client = redis.Redis.from_url(throwaway_redis.url, socket_timeout=1.0)
    store = RedisSessionStore(client, lock_ttl_ms=300)   # the refused save leaves its lock to expire
    admin = redis.Redis.from_url(throwaway_redis.url)
    with store.locked(USER_KEY) as held:
        held.save(_user_session("home"), 180)
    with caplog.at_level("ERROR", logger="engine.lean_script"):
        with store.locked(USER_KEY) as held:
            assert held.session is not None and held.session.node == "home"
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", 1)               # Redis now refuses every write
            held.save(_user_session("balance"), 180)       # the hop still returns its answer
        assert _eventually(lambda: "errorstat_OOM" in admin.info("errorstats"))
        admin.config_set("maxmemory", 0)
        with store.locked(USER_KEY, wait_seconds=3.0) as held:
            assert held.session is not None and held.session.node == "home"
    refused = [r.getMessage() for r in caplog.records if "failed after the hop was answered" in r.getMessage()]
    assert len(refused) == 1 and "maxmemory" in refused[0]      # Redis's own reason
    assert "*****001" in refused[0] and "221770000001" not in refused[0]
    admin.close()
    client.close()


def test_a_save_whose_reply_is_lost_is_logged_and_the_next_hop_goes_through(
        store: RedisSessionStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert _hop(store, "home") is None
    real_read = redis.connection.Connection.read_response
    lost: list[bool] = []

    def lose_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not lost:    # the first reply read: the save's, read before the next hop's lock request
            lost.append(True)
            self.disconnect()
            raise redis.ConnectionError("Connection closed by server.")
        return real_read(self, *args, **kwargs)

    with caplog.at_level("ERROR", logger="engine.lean_script"):
        with store.locked(KEY) as held:
            held.save(_session("balance"), 180)
        monkeypatch.setattr(redis.connection.Connection, "read_response", lose_once)
        assert _hop(store, "bills") == "balance"   # Redis had saved it; the next hop reconnects
    assert lost == [True]
    assert any("save of session ussd:ATUid_1 not confirmed" in r.getMessage() for r in caplog.records)


def test_a_save_refused_on_a_thread_that_then_ends_is_logged_all_the_same(throwaway_redis, caplog):
    # a server retires its idle threads: the last save of such a thread has no next call to read its reply
    client = redis.Redis.from_url(throwaway_redis.url, socket_timeout=1.0)
    store = RedisSessionStore(client, lock_ttl_ms=300)
    admin = redis.Redis.from_url(throwaway_redis.url)

    def last_hop() -> None:
        with store.locked(USER_KEY) as held:
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", 1)               # Redis now refuses every write
            held.save(_user_session("balance"), 180)

    with caplog.at_level("ERROR", logger="engine.lean_script"):
        thread = threading.Thread(target=last_hop)
        thread.start()
        thread.join()
        gc.collect()
        assert _eventually(lambda: any("failed after the hop was answered" in r.getMessage()
                                       for r in caplog.records))
    admin.config_set("maxmemory", 0)
    refused = [r.getMessage() for r in caplog.records if "failed after the hop was answered" in r.getMessage()]
    assert len(refused) == 1 and "*****001" in refused[0] and "221770000001" not in refused[0]
    admin.close()
    client.close()
