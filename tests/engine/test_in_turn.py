"""A caller holding the engine's turn for its whole request (``Engine.in_turn``, the USSD fast path): its work
and its hop run one request at a time, and what a hop waits for still gives the turn back to other customers."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from engine import Engine, FlowSet, Reply, SessionStore
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps
from .test_turnstile import HOME, LIST, HangingBackEnd


@pytest.fixture
def back_end(steps: CountingSteps) -> Iterator[HangingBackEnd]:
    hanging = HangingBackEnd(steps)
    yield hanging
    hanging.released.set()   # a failed test must not leave a thread hanging


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as threads:
        yield threads


def _in_turn(engine: Engine, session: str, *preset: str) -> Callable[[], Reply]:
    def request() -> Reply:
        with engine.in_turn():
            return Handset(engine, session).dial(*preset)
    return request


def test_a_request_in_turn_whose_back_end_hangs_lets_other_requests_in_turn_through(
        store: SessionStore, steps: CountingSteps, pool: ThreadPoolExecutor, back_end: HangingBackEnd):
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps)
    stuck = pool.submit(_in_turn(engine, "stuck", "8"))    # "8" runs a step whose back end hangs
    assert back_end.called.wait(5)
    assert pool.submit(_in_turn(engine, "other")).result(timeout=5).text.startswith(HOME)
    back_end.released.set()
    assert stuck.result(timeout=5).text.startswith(LIST)


def test_a_retry_in_turn_waiting_for_its_held_session_lets_other_requests_in_turn_through(
        store: SessionStore, steps: CountingSteps, pool: ThreadPoolExecutor, back_end: HangingBackEnd):
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps)
    first = pool.submit(_in_turn(engine, "s1", "8"))
    assert back_end.called.wait(5)
    retry: Future[Reply] = pool.submit(_in_turn(engine, "s1", "8"))   # the gateway's retry: s1 is held
    time.sleep(0.1)
    assert pool.submit(_in_turn(engine, "s2")).result(timeout=5).text.startswith(HOME)
    assert not retry.done()
    back_end.released.set()
    answer, again = first.result(timeout=5), retry.result(timeout=15)
    assert (again.text, again.replayed) == (answer.text, True)


def test_requests_in_turn_never_interleave(store: SessionStore, pool: ThreadPoolExecutor):
    """Four customers turn 30 pages each at once, each request held in turn: no two requests' blocks overlap."""
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps())
    phones = [Handset(engine, f"s{i}") for i in range(4)]
    for phone in phones:
        phone.dial("1")
    held: list[tuple[float, float]] = []
    guard, start = threading.Lock(), threading.Barrier(len(phones))

    def turn_pages(phone: Handset) -> None:
        start.wait()
        for i in range(30):
            with engine.in_turn():
                began = time.perf_counter()
                assert "Article" in phone.answer("98" if i % 2 == 0 else "99").text
                ended = time.perf_counter()
            with guard:
                held.append((began, ended))

    for done in [pool.submit(turn_pages, phone) for phone in phones]:
        done.result(timeout=30)
    held.sort()
    assert len(held) == 120
    assert [(a, b) for a, b in itertools.pairwise(held) if b[0] < a[1]] == []
