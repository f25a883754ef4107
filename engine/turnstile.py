"""One hop at a time through the engine's own work in each process; back-end calls and waits outside.

A worker serves hops from several threads, so that a slow back end holds one thread and not the whole
worker. But Python runs one thread at a time: threads running engine work side by side only take turns on
the GIL, and a hop resumed after its Redis reply waits for whichever thread holds the GIL, then for the
next. Every hop's time grows by the work of the hops it alternates with, for no more throughput than one
after the other gives (``make bench``, 100 connections, the engine's own time per hop p50 / p99: dial
1.98 / 9.37 ms interleaved, 0.32 / 1.28 ms taking turns; page turn 2.43 / 9.63 and 0.56 / 1.81 ms).

So a hop takes the turnstile for the engine's own work (session lock and load, the flow, the screen, the
save) and gives it back for what may take long: dialog steps (back-end calls), writes to the audit trail
(SQL), and the waits while another hop holds a session it needs. The time spent waiting for it is counted
per thread (``waited``) and reported beside the engine's own time (``engine_wait_seconds``), not hidden in it.

A caller whose work around the hop is the CPU's alone (the USSD fast path: reading the form, writing and logging
the answer) holds the turnstile for its whole request (``hold``, ``Engine.in_turn``): the hop inside enters it
again (it is reentrant per thread) and still gives it back whole for its waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Turnstile"]


class Turnstile:
    """A process-wide lock around the engine's own work, with the waits for it counted per thread.

    ``enabled=False`` turns it into nothing (each call returns at once, nothing is waited)."""

    def __init__(self, enabled: bool = True, timer: Callable[[], float] = time.perf_counter) -> None:
        self._lock = threading.Lock() if enabled else None
        self._timer = timer
        self._local = threading.local()

    def start(self) -> None:
        """A new hop on this thread: its waits count from zero."""
        self._local.waited = 0.0

    @property
    def waited(self) -> float:
        """Seconds this thread's hop has waited so far (for the turnstile, or paused outside it)."""
        return float(getattr(self._local, "waited", 0.0))

    def note_wait(self, seconds: float) -> None:
        """A pause the hop made outside the turnstile (another hop held its session)."""
        self._local.waited = self.waited + seconds

    def enter(self) -> None:
        """Take the turnstile; a thread already inside (``hold``) goes deeper and gives it back at its last
        ``leave``."""
        if self._lock is None:
            return
        local = self._local
        depth = getattr(local, "depth", 0)
        if depth:
            local.depth = depth + 1
            return
        if not self._lock.acquire(blocking=False):
            asked = self._timer()
            self._lock.acquire()
            self.note_wait(self._timer() - asked)
        local.depth = 1

    def leave(self) -> None:
        if self._lock is not None:
            local = self._local
            local.depth -= 1
            if not local.depth:
                self._lock.release()

    @property
    def held(self) -> bool:
        """Whether this thread is inside."""
        return bool(getattr(self._local, "depth", 0))

    def pause(self) -> int:
        """Give the turnstile back if this thread is inside, however deep; how deep it was (for ``resume``;
        0, false, when it was not inside)."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = 0
            self._lock.release()  # type: ignore[union-attr]  # depth is only ever set with a lock
        return int(depth)

    def resume(self, paused: int) -> None:
        """Take the turnstile again, as deep as ``pause`` found this thread."""
        if paused:
            self.enter()
            self._local.depth = paused

    @contextmanager
    def hold(self) -> Iterator[None]:
        """The turnstile for the whole block: a caller whose work around the hop is the CPU's alone (reading
        the request, writing the answer) does it in the same turn as the hop, not interleaved with other
        threads' (each waiting for the other's GIL); the hop's own waits (back ends, sessions held) still
        give it back."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Give the turnstile back for the block (an audit write), take it again after; a thread that is
        not inside (the gateway's end-of-session report) runs the block as it is."""
        paused = self.pause()
        try:
            yield
        finally:
            self.resume(paused)
