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


def test_two_different_hops_at_once_apply_one_input_and_answer_both_with_its_screen():
    """Two hops on the same history with different inputs ("2" and "1" after the dial): a gateway waits for
    each screen, so they cannot both be the customer's. The first to take the session is applied; the other's
    text does not continue the session's any more, so it gets that screen again and its input is never applied
    on top (before, each was saved on top of the other: "2" then "1" re-asked an amount)."""
    steps = CountingSteps()
    engine, store = _engine(steps)
    Handset(engine).dial()
    a, b = _together(lambda: Handset(engine).hop("2"), lambda: Handset(engine).hop("1"))
    saved = store.load("ussd:s1")
    assert saved is not None
    assert saved.hops == 2  # the dial and one of the two, never both
    assert (saved.node, saved.retries) in (("ask_amount", 0), ("list", 0))
    assert a.text == b.text
    assert steps.calls.get("demo.items", 0) == (1 if saved.node == "list" else 0)
