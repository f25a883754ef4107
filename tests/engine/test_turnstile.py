"""Hops from several threads of one worker: the engine's own work one hop at a time, what may take long
(a back end that hangs, a session another hop holds) outside, and the waits reported, not hidden."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from engine import Engine, FlowSet, Reply, SessionBusy, SessionStore
from engine.audit import SessionRecord
from engine.store import LockedSession
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps

HOME, LIST = "Bonjour Awa", "Choisissez:"


class HangingBackEnd:
    """The slow step's back end: hangs until released (by the test, or at its end)."""

    def __init__(self, steps: CountingSteps) -> None:
        self.called, self.released = threading.Event(), threading.Event()
        steps.sleep = self._hang

    def _hang(self, _seconds: float) -> None:
        self.called.set()
        self.released.wait(10)


@pytest.fixture
def back_end(steps: CountingSteps) -> Iterator[HangingBackEnd]:
    hanging = HangingBackEnd(steps)
    yield hanging
    hanging.released.set()   # a failed test must not leave a thread hanging


class Reports:
    """The hop observer: (seconds, step seconds, wait seconds) of each hop, by the label of the hop that
    made it (``labelled``: the observer is called on the hop's own thread)."""

    def __init__(self) -> None:
        self.hops: dict[str, tuple[float, float, float]] = {}
        self._hop = threading.local()

    def labelled(self, label: str, dial: Callable[[], Reply]) -> Callable[[], Reply]:
        def run() -> Reply:
            self._hop.label = label
            return dial()
        return run

    def observe(self, *, channel: str, seconds: float, step_seconds: float, wait_seconds: float,
                end: bool, cpu_seconds: float) -> None:
        self.hops[self._hop.label] = (seconds, step_seconds, wait_seconds)


class Refusals:
    """When a hop was first refused its session because another hop held it (the store's SessionBusy)."""

    def __init__(self, store: SessionStore) -> None:
        self.first = threading.Event()
        self.first_at = 0.0
        inner = store.locked

        @contextmanager
        def locked(*args: Any, **kwargs: Any) -> Iterator[LockedSession]:
            with ExitStack() as held:
                try:
                    session = held.enter_context(inner(*args, **kwargs))
                except SessionBusy:
                    if not self.first.is_set():
                        self.first_at = time.perf_counter()
                        self.first.set()
                    raise
                yield session

        store.locked = locked  # type: ignore[method-assign]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as threads:
        yield threads


def _dial(engine: Engine, session: str, *preset: str) -> Callable[[], Reply]:
    return lambda: Handset(engine, session).dial(*preset)


def test_a_hanging_back_end_holds_its_own_customer_only(store: SessionStore, steps: CountingSteps,
                                                         pool: ThreadPoolExecutor, back_end: HangingBackEnd):
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps)
    stuck = pool.submit(_dial(engine, "stuck", "8"))      # "8" runs a step whose back end hangs
    assert back_end.called.wait(5)
    # Another customer dials meanwhile and is answered: the hung hop gave the engine back.
    assert pool.submit(_dial(engine, "other")).result(timeout=5).text.startswith(HOME)
    assert not stuck.done()
    back_end.released.set()
    assert stuck.result(timeout=5).text.startswith(LIST)


def test_the_gateways_retry_of_a_hung_hop_waits_without_holding_anyone_and_gets_the_same_answer(
        store: SessionStore, steps: CountingSteps, pool: ThreadPoolExecutor, back_end: HangingBackEnd):
    reports, refusals = Reports(), Refusals(store)
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, observer=reports)
    first = pool.submit(reports.labelled("first", _dial(engine, "s1", "8")))
    assert back_end.called.wait(5)
    # The same hop again: its session is held, so the retry is refused it and waits.
    retry: Future[Reply] = pool.submit(reports.labelled("retry", _dial(engine, "s1", "8")))
    assert refusals.first.wait(5)
    assert pool.submit(reports.labelled("other", _dial(engine, "s2"))).result(timeout=5).text.startswith(HOME)
    assert not retry.done()
    held_for = 0.3   # the session stays held at least this long after the retry was first refused it
    time.sleep(max(0.0, refusals.first_at + held_for - time.perf_counter()))
    back_end.released.set()
    answer, again = first.result(timeout=5), retry.result(timeout=15)
    assert (again.text, again.replayed) == (answer.text, True)
    assert steps.calls["demo.slow"] == 1
    # The retry's report says it waited, and its wait is a part of its time, not added to it. Its waits are
    # the pauses it planned, and a loaded machine oversleeps each: half the hold is a margin no load reaches.
    seconds, step_seconds, wait_seconds = reports.hops["retry"]
    assert step_seconds == 0.0 and held_for / 2 <= wait_seconds <= seconds


class _Timeline:
    """When each hop held its session (the engine's own work: these hops run no step), by thread."""

    def __init__(self) -> None:
        self.held: list[tuple[float, float]] = []
        self.recording = False
        self._guard = threading.Lock()

    def wrap(self, store: SessionStore) -> None:
        inner = store.locked

        @contextmanager
        def locked(*args: Any, **kwargs: Any) -> Iterator[LockedSession]:
            with inner(*args, **kwargs) as held:
                began = time.perf_counter()
                yield held
                # a page turn saves on leaving: the end of the hop's work is after the save
            ended = time.perf_counter()
            if self.recording:
                with self._guard:
                    self.held.append((began, ended))

        store.locked = locked  # type: ignore[method-assign]


def _held_while_turning_pages(store: SessionStore, pool: ThreadPoolExecutor, serial: bool) -> list[tuple[float, float]]:
    """Four customers on the list of 30 articles turn 30 pages each at once: when each hop held its session."""
    timeline = _Timeline()
    timeline.wrap(store)
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), serial=serial)
    phones = [Handset(engine, f"s{i}") for i in range(4)]
    for phone in phones:
        phone.dial("1")                                 # the list: its step runs here, once
    timeline.recording = True
    start = threading.Barrier(len(phones))

    def turn_pages(phone: Handset) -> None:
        start.wait()
        for i in range(30):
            assert "Article" in phone.answer("98" if i % 2 == 0 else "99").text

    for done in [pool.submit(turn_pages, phone) for phone in phones]:
        done.result(timeout=30)
    assert len(timeline.held) == 120
    return sorted(timeline.held)


def test_page_turns_from_four_threads_never_interleave_their_work(store: SessionStore, pool: ThreadPoolExecutor):
    held = _held_while_turning_pages(store, pool, serial=True)
    assert [(a, b) for a, b in itertools.pairwise(held) if b[0] < a[1]] == []


class _Meeting:
    """The store of two customers' page turns: the first hop to hold its session keeps it, and stays in the
    engine's own work, until a hop of the other customer holds its own, or ``patience`` runs out. The two
    hops overlap by construction wherever the engine lets two hops' work run at once; where it lets one
    through at a time, the other waits behind the first and they never meet (however slow the machine)."""

    def __init__(self, store: SessionStore, patience: float = 10.0) -> None:
        self.met = False
        self.patience = patience
        self._keys: list[str] = []
        self._second = threading.Event()
        self._guard = threading.Lock()
        inner = store.locked

        @contextmanager
        def locked(key: str, *args: Any, **kwargs: Any) -> Iterator[LockedSession]:
            with inner(key, *args, **kwargs) as held:
                with self._guard:
                    if key not in self._keys:
                        self._keys.append(key)
                    first, second = key == self._keys[0], len(self._keys) > 1
                if second:
                    self._second.set()
                if first and not self.met:
                    self.met = self._second.wait(self.patience)
                yield held

        store.locked = locked  # type: ignore[method-assign]


def test_with_the_turnstile_off_the_same_page_turns_interleave(store: SessionStore, pool: ThreadPoolExecutor):
    """The test above can fail: without the turnstile, two threads' hops run their work at once. (Shown by
    construction, not by timing: the first page turn waits inside its work for the second to arrive.)"""
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), serial=False)
    phones = [Handset(engine, f"s{i}") for i in range(2)]
    for phone in phones:
        phone.dial("1")                                 # the list: its step runs here, once
    meeting = _Meeting(store)
    first = pool.submit(phones[0].answer, "98")
    second = pool.submit(phones[1].answer, "98")
    assert all("Article" in turn.result(timeout=30).text for turn in (first, second))
    assert meeting.met


class HangingAudit:
    """The audit trail's database, hanging on the first session's record until released."""

    def __init__(self) -> None:
        self.called, self.released = threading.Event(), threading.Event()
        self.records: list[str] = []

    def record(self, record: SessionRecord) -> None:
        self.called.set()
        self.released.wait(10)
        self.records.append(record.session_key)

    def complete(self, session_key: str, **report: object) -> None:
        """The gateway's end-of-session report: not used here."""


def test_an_audit_trail_that_hangs_holds_only_the_hop_that_writes_to_it(store: SessionStore,
                                                                        pool: ThreadPoolExecutor):
    audit = HangingAudit()
    engine = Engine(FlowSet(load_menus(DEMO)), store, CountingSteps(), audit=audit)
    try:
        ending = pool.submit(_dial(engine, "leaving", "4"))   # "4": goodbye, the session's end is recorded
        assert audit.called.wait(5)
        assert pool.submit(_dial(engine, "other")).result(timeout=5).text.startswith(HOME)
        assert not ending.done()
    finally:
        audit.released.set()
    assert ending.result(timeout=5).text == "Au revoir."
    assert audit.records == ["ussd:leaving"]
