"""Two hops of one session at the same moment, on Redis: nothing lost, nothing run twice."""

from __future__ import annotations

import threading

import redis

from engine import Engine, FlowSet, RedisSessionStore
from menus import load_menus

from ..support.services import REDIS_TEST_URL, clean_redis, need_service
from .conftest import DEMO, Handset
from .fakes import CountingSteps


def _engine(steps: CountingSteps) -> tuple[Engine, RedisSessionStore]:
    need_service("Redis", REDIS_TEST_URL, 6379)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    clean_redis(client)
    store = RedisSessionStore(client)
    return Engine(FlowSet(load_menus(DEMO)), store, steps), store


def _together(*calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_the_same_hop_twice_at_once_runs_the_step_once_and_answers_alike():
    steps = CountingSteps()
    engine, _ = _engine(steps)
    Handset(engine).dial()
    a, b = _together(lambda: Handset(engine).hop("1"), lambda: Handset(engine).hop("1"))
    assert a.text == b.text and a.text.startswith("Choisissez:")
    assert steps.calls["demo.items"] == 1


def test_two_different_hops_at_once_lose_no_update():
    steps = CountingSteps()
    engine, store = _engine(steps)
    Handset(engine).dial()
    _together(lambda: Handset(engine).hop("2"), lambda: Handset(engine).hop("1"))
    saved = store.load("ussd:s1")
    assert saved is not None
    assert saved.hops == 3  # dial + both hops, each saved on top of the other
    # Whichever came second started from the state the first one saved: "2" then "1" is an
    # amount too small (re-asked once); "1" then "2" picks the second article of the list.
    assert (saved.node, saved.retries) in (("ask_amount", 1), ("picked", 0))
