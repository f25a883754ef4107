"""What one hop costs Redis, as the production set-up serves it: one round trip waited for, under a kilobyte
kept per idle session, and a session this release cannot read (saved by an earlier one, damaged)
treated as expired rather than answered with an error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from flask import Flask

from tests.support.engine import UssdPhone

KNOWN = "+221770000001"
HOME = "CON ElecNet - 1000001\n1. Solde et factures"


@dataclass
class CommandLog:
    """The Redis commands the product writes to its sockets, through every client it holds (a
    pipeline or a script call is one write), and each reply it reads (``"reply"``), in order."""

    sent: list[str] = field(default_factory=list)

    def watch(self, client: redis.Redis) -> None:
        """Count what every connection of ``client``'s pool sends: those it lends, and those it makes for
        a thread to keep (the session store's scripts)."""
        pool = client.connection_pool
        pool.disconnect()   # connections made before the watch are made again, counted
        get_connection, make_connection = pool.get_connection, pool.make_connection

        def counted_connection(connection: Any) -> Any:
            if not getattr(connection, "_counted", False):
                send = connection.send_packed_command

                def counted(command: Any, *rest: Any, **more: Any) -> Any:
                    head = b"".join(command) if isinstance(command, list) else bytes(command)
                    self.sent.append(head.split(b"\r\n")[2].decode().upper())   # "*N", "$len", name
                    return send(command, *rest, **more)

                read = connection.read_response

                def replied(*args: Any, **kwargs: Any) -> Any:
                    self.sent.append("reply")
                    return read(*args, **kwargs)

                connection.send_packed_command = counted
                connection.read_response = replied
                connection._counted = True
            return connection

        pool.get_connection = lambda *a, **k: counted_connection(get_connection(*a, **k))  # type: ignore[method-assign]
        pool.make_connection = lambda: counted_connection(make_connection())  # type: ignore[method-assign]


@pytest.fixture
def commands(app: Flask) -> Iterator[CommandLog]:
    parts = app.extensions["parts"]
    log = CommandLog()
    log.watch(parts["store"]._redis)
    log.watch(parts["deps"].identity._client)
    yield log


@pytest.fixture
def store(settings: Any) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()


def test_a_known_customers_dial_and_a_page_turn_wait_for_one_redis_round_trip_each(app, commands):
    UssdPhone(app.test_client(), KNOWN).dial()        # the first dial fills the identity cache
    phone = UssdPhone(app.test_client(), KNOWN)
    commands.sent.clear()
    assert phone.dial().startswith(HOME)
    # the reply to the last hop's save (long arrived), lock + session + resume pointer + cached identity and
    # its reply, then save + resume pointer + unlock sent with the source (EVAL), its reply read next time
    assert commands.sent == ["reply", "EVALSHA", "reply", "EVAL"]
    phone.answer("1")
    assert phone.answer("1").startswith("CON Factures")
    commands.sent.clear()
    assert phone.answer("98").startswith("CON ")      # the next page of the bills
    assert commands.sent == ["reply", "EVALSHA", "reply", "EVAL"]


def test_the_hop_that_ends_a_session_and_its_retry_once_it_is_gone_wait_for_one_round_trip_each(app, commands,
                                                                                                  store):
    phone = UssdPhone(app.test_client(), KNOWN)
    phone.dial("3", "2", "5000", "1")
    commands.sent.clear()
    ended = phone.answer("2")                        # saved ended, the id spent and its END kept: one script call
    assert ended.startswith("END ")
    assert commands.sent == ["reply", "EVALSHA", "reply", "EVAL"]
    store.delete(f"conv:s:ussd:{phone.session_id}")  # the ended session's two minutes are over
    commands.sent.clear()
    assert phone.post("*".join(phone.inputs)) == ended   # its retry: the spent id and its END, read
    assert commands.sent == ["reply", "EVALSHA", "reply", "EVAL"]   # with the lock


def test_an_idle_session_keeps_under_a_kilobyte_in_redis(app, store):
    phone = UssdPhone(app.test_client(), KNOWN)
    assert phone.dial().startswith(HOME)
    key = f"conv:s:ussd:{phone.session_id}"
    assert store.exists(key)
    assert store.memory_usage(key) <= 1024


@pytest.mark.parametrize("stored", [
    # as the previous release stored it: JSON, every field by its full name
    (b'{"key":"ussd:X","channel":"ussd","user_id":"+221770000001","flow":"main","version":"1-0",'
     b'"node":"home","language":"fr","created_at":1.0,"updated_at":1.0,"data":{}}'),
    b"\x00\xff\xfe not a session",
    b"\x81\xa1_\x07",                                   # MessagePack, but of another format version
], ids=["previous-release", "damaged", "other-version"])
def test_a_session_this_release_cannot_read_is_treated_as_expired(app, store, stored):
    phone = UssdPhone(app.test_client(), KNOWN)
    phone.session_id = "ATUid_unreadable"
    store.set("conv:s:ussd:ATUid_unreadable", stored.replace(b"ussd:X", b"ussd:ATUid_unreadable"), ex=60)
    assert phone.post("").startswith(HOME)             # a new session, not an error
    assert phone.last_status == 200
    assert phone.post("1").startswith("CON Compte 1000001")   # and it goes on from there


def test_a_session_left_unreadable_by_a_deploy_mid_conversation_starts_again_from_what_was_typed(app, store):
    phone = UssdPhone(app.test_client(), KNOWN)
    phone.session_id = "ATUid_deployed"
    store.set("conv:s:ussd:ATUid_deployed", b'{"key":"ussd:ATUid_deployed","node":"home"}', ex=60)
    # The gateway's next hop carries the whole history: read as a dial with a shortcut.
    assert phone.post("1").startswith("CON Compte 1000001")
    assert phone.last_status == 200


def test_an_identity_read_with_the_session_serves_its_hop_once_and_a_change_drops_it(store):
    from app.storage.identity_cache import RedisIdentityCache

    cache = RedisIdentityCache(store, ttl_seconds=60, key_secret=b"k")
    known = {"accounts": [{"account_number": "1000001"}], "language": "fr"}
    cache.preload(KNOWN, b'{"accounts": [], "language": "en"}')   # what the session store read
    assert cache.get(KNOWN) == {"accounts": [], "language": "en"}
    assert cache.get(KNOWN) is None                                  # once: then Redis, which has nothing
    cache.preload(KNOWN, b'{"accounts": [], "language": "en"}')
    cache.forget(KNOWN)                                              # a link, the language, the PIN changed
    assert cache.get(KNOWN) is None
    cache.put(KNOWN, known)                                          # not kept: the tombstone stands
    assert cache.get(KNOWN) is None
    cache.preload(KNOWN, None)
    cache.release(KNOWN)                                             # the hop is over
    store.delete(cache.key_for(KNOWN) or "")
    cache.put(KNOWN, known)
    assert cache.get(KNOWN) == known
