"""A small thread-safe circuit breaker: after N consecutive failures, fail fast for M seconds.

Why not ``pybreaker``: its ``CircuitBreaker.call`` holds one lock for the whole guarded call
(pybreaker 1.4, danielfm/pybreaker#3, the lock-removal PRs #41/#57/#77 were closed), so every
thread of a worker talking to the same back end would wait in line behind a slow request, and
driving its states by hand instead of through ``call`` is not what it is made for. Here the lock
guards only the counters; the network call runs outside it.

States::

    closed --N consecutive failures--> open --reset_seconds elapsed--> half-open
    half-open --trial call succeeds--> closed;   half-open --trial call fails--> open

In half-open exactly one trial call is let through; other callers fail fast until it ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final, Literal

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker", "CircuitOpen"]

State = Literal["closed", "open", "half-open"]
CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half-open"


class CircuitOpen(Exception):
    """Raised by ``CircuitBreaker.before_call`` while the circuit refuses calls."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"circuit open, next trial in {retry_in:.1f}s")
        self.retry_in = retry_in


class CircuitBreaker:
    """Counts consecutive failures of one back end; callers use it around each call::

        trial = breaker.before_call()  # raises CircuitOpen without touching the network
        try:
            result = do_call()
        except Unavailable:
            breaker.record(ok=False, trial=trial)
            raise
        breaker.record(ok=True, trial=trial)
    """

    def __init__(self, failures: int, reset_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1:
            raise ValueError("failures must be >= 1")
        self.failures_to_open = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._consecutive_failures

    def before_call(self) -> bool:
        """Lets the call through, or raises ``CircuitOpen``.

        Returns whether the call is the half-open trial; pass it to ``record``, which must then
        be called exactly once with the outcome.
        """
        with self._lock:
            if self._state == CLOSED:
                return False
            if self._state == OPEN:
                waited = self._clock() - self._opened_at
                if waited < self.reset_seconds:
                    raise CircuitOpen(self.reset_seconds - waited)
                self._state = HALF_OPEN
            # Half-open: one trial at a time, so a back end coming back up is not flooded.
            if self._trial_running:
                raise CircuitOpen(0.0)
            self._trial_running = True
            return True

    def record(self, *, ok: bool, trial: bool = False) -> None:
        """The outcome of a call that ``before_call`` let through."""
        with self._lock:
            if trial:
                self._trial_running = False
                self._consecutive_failures = 0 if ok else self._consecutive_failures + 1
                self._open_or_close(closed=ok)
                return
            if self._state != CLOSED:
                # Late news from a call started before the circuit opened: the trial decides.
                return
            if ok:
                self._consecutive_failures = 0
                return
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.failures_to_open:
                self._open_or_close(closed=False)

    def _open_or_close(self, *, closed: bool) -> None:
        self._state = CLOSED if closed else OPEN
        if not closed:
            self._opened_at = self._clock()
