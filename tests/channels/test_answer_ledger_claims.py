"""A claim in the answer ledger is won by one caller only, even when many ask at the same moment (threads
on one process's ledger; two clients on the shared Redis one), and a Redis that cannot be reached grants
none: an owed reply is then left to a later retry rather than risked twice."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis

from app.storage.answer_ledger import RedisAnswerLedger
from channels.answer_ledger import AnswerLedger, MemoryAnswerLedger
from tests.support.ports import closed_port


def race(ledgers: list[AnswerLedger], name: str) -> list[bool]:
    start = threading.Barrier(len(ledgers))
    won: list[bool] = []

    def claim(ledger: AnswerLedger) -> None:
        start.wait()
        won.append(ledger.claim("sms", name))

    threads = [threading.Thread(target=claim, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return won


def memory(_: str) -> Callable[[], AnswerLedger]:
    shared = MemoryAnswerLedger()
    return lambda: shared


def shared_redis(url: str) -> Callable[[], AnswerLedger]:
    return lambda: RedisAnswerLedger(redis.Redis.from_url(url))


@pytest.mark.parametrize("ledger_of", [memory, shared_redis], ids=["memory", "redis"])
def test_of_eight_callers_claiming_together_one_wins_and_each_name_is_its_own_claim(ledger_of, redis_url):
    new = ledger_of(redis_url)
    assert sorted(race([new() for _ in range(8)], "ATXid_1:owed:0")) == [False] * 7 + [True]
    assert new().claim("sms", "ATXid_1:owed:1") is True        # the next round
    assert new().claim("whatsapp_meta", "ATXid_1:owed:0") is True   # another channel's


def test_an_unreachable_redis_grants_no_claim():
    ledger = RedisAnswerLedger(redis.Redis(host="127.0.0.1", port=closed_port(), socket_connect_timeout=0.2))
    assert ledger.claim("sms", "ATXid_1:owed:0") is False


def test_the_ledger_says_it_forgot_until_it_has_remembered_a_whole_lifetime_and_again_after_a_restart(
        throwaway_redis):
    now = [1_000_000.0]
    ledger = RedisAnswerLedger(redis.Redis.from_url(throwaway_redis.url), ttl_seconds=3600, clock=lambda: now[0])
    assert ledger.forgot() is True                 # a new Redis: it begins remembering now
    now[0] += 3599
    assert ledger.forgot() is True
    now[0] += 2
    assert ledger.forgot() is False                # a whole lifetime remembered: a miss is a new message
    throwaway_redis.stop()
    assert ledger.forgot() is True                 # unreachable: it cannot say
    throwaway_redis.start()                        # restarted empty: every record gone
    assert ledger.forgot() is True


def test_a_process_ledger_forgot_what_came_before_the_process():
    now = [0.0]
    ledger = MemoryAnswerLedger(ttl_seconds=60, clock=lambda: now[0])
    assert ledger.forgot() is True
    now[0] = 61
    assert ledger.forgot() is False
