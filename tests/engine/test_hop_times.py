"""What a hop's times say to an operator reading the hop metrics: time in dialog steps, time waiting, and the
engine's own time (the rest) each counted once, even when a hop waits to come back from its step."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.ops import Metrics
from engine import Engine, FlowSet, SessionStore
from engine.store import LockedSession
from menus import load_menus

from .conftest import DEMO, Handset
from .fakes import CountingSteps
from .test_session_lifecycle import Timer, sample


def test_a_hop_that_waits_to_come_back_from_its_step_counts_that_wait_once_and_keeps_its_own_time(
        store: SessionStore):
    """Hop A's slow step (0.25 s) ends while hop B does its own work (0.5 s): A waits 0.5 s for its turn. A's own
    work (0.1 s, in its session's lock) must read 0.1 s, its step 0.25 s and its wait 0.5 s, not the wait
    counted in the step as well (which made the own time read 0)."""
    timer, metrics, steps = Timer(), Metrics(), CountingSteps()
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, observer=metrics, timer=timer, hop_key=b"k")
    b_inside, b_done = threading.Event(), threading.Event()

    inner = store.locked

    @contextmanager
    def locked(key: str, *args: Any, **kwargs: Any) -> Iterator[LockedSession]:
        with inner(key, *args, **kwargs) as held:
            if key == "ussd:a":
                timer.spend(0.1)            # A's own work
            else:
                b_inside.set()              # B holds the engine's turn while A's step ends
                time.sleep(0.3)             # (real time: A is blocked on its way back by then)
                timer.spend(0.5)
            yield held

    store.locked = locked  # type: ignore[method-assign]

    def hop_b() -> None:
        Handset(engine, "b").dial()
        b_done.set()

    def slow_step(seconds: float) -> None:
        timer.spend(0.25)
        threading.Thread(target=hop_b, daemon=True).start()
        assert b_inside.wait(5)

    steps.sleep = slow_step
    assert Handset(engine, "a").dial("8").text.startswith("Choisissez:")
    assert b_done.wait(5)

    hop_a = {"channel": "ussd"}
    assert sample(metrics, "engine_hop_seconds_count", **hop_a) == 2
    assert sample(metrics, "engine_step_seconds_sum", **hop_a) == 0.25
    assert sample(metrics, "engine_wait_seconds_sum", **hop_a) == 0.5
    # A's own 0.1 s and B's own 0.5 s, and nothing of A's wait
    assert round(sample(metrics, "engine_own_seconds_sum", **hop_a) or 0.0, 6) == 0.6


def test_a_hops_own_cpu_leaves_its_steps_cpu_out_and_shows_beside_its_own_time(store: SessionStore):
    """An operator reads ``engine_own_cpu_seconds`` beside ``engine_own_seconds``: the CPU the engine's own work
    cost (what faster code shortens), apart from the session store's round trip and the thread's wait for a CPU.
    Hop: 0.1 s of own work, of which 0.04 s of CPU (the rest a round trip), and a step of 0.25 s, all CPU
    (a busy back-end client). Its own CPU reads 0.04 s: not the step's 0.25 s, nor the own time's 0.1 s."""
    timer, cpu, metrics, steps = Timer(), Timer(), Metrics(), CountingSteps()
    engine = Engine(FlowSet(load_menus(DEMO)), store, steps, observer=metrics, timer=timer, cpu_timer=cpu,
                    hop_key=b"k")
    inner = store.locked

    @contextmanager
    def locked(key: str, *args: Any, **kwargs: Any) -> Iterator[LockedSession]:
        with inner(key, *args, **kwargs) as held:
            timer.spend(0.1)
            cpu.spend(0.04)
            yield held

    store.locked = locked  # type: ignore[method-assign]

    def busy_step(seconds: float) -> None:
        timer.spend(seconds)
        cpu.spend(seconds)

    steps.sleep, steps.slow_seconds = busy_step, 0.25
    assert Handset(engine, "a").dial("8").text.startswith("Choisissez:")
    ussd = {"channel": "ussd"}
    assert round(sample(metrics, "engine_own_seconds_sum", **ussd) or 0.0, 6) == 0.1
    assert round(sample(metrics, "engine_own_cpu_seconds_sum", **ussd) or 0.0, 6) == 0.04
    assert sample(metrics, "engine_own_cpu_seconds_count", **ussd) == 1
