"""A PostgreSQL connection that gives up on a server that stops answering, however it stops.

``statement_timeout`` and ``lock_timeout`` are the server's own: they end a statement the server is running (or
waiting for a lock), and the connection stays usable. They cannot end a wait for a server that no longer answers
at all: hung, stopped, or behind a proxy or link that still takes our packets but forwards nothing. TCP
keepalives find a peer that is gone, not one whose kernel (or a proxy's) still acknowledges, and libpq waits for
the answer for ever. So every wait of the connection (a statement, a commit, the pool's ping) is bounded here too,
on our side: past ``answer_seconds`` the connection is closed (its state is unknown) and the statement fails with
``psycopg.OperationalError``, which SQLAlchemy reads as a lost connection (the pool opens a new one next time).
The bound is a little longer than the statement timeout, so a server that answers cancels first.

One hop may need the database several times (the step's query, then the audit trail's write, each on a new
connection once the first is closed): paying the full bound and a connect timeout each time would outlive the
gateway. So once a wait or a connect went unanswered, the engine's connections are ``Silence``d for a few
seconds (``SILENCE_SECONDS``): no new connection is tried (the rest of the hop fails at once, its answer "try
again" goes out), and a wait on a connection already open is bounded by ``QUICK_SECONDS`` (a server that came
back answers within it, and the silence ends at its first answer). Past it, connecting is tried again, bounded by
``connect_timeout``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg.abc import PQGen
from psycopg.errors import _WaitTimeout  # psycopg's "wait timeout expired": private, so it fails loudly here
from sqlalchemy import Engine, event

__all__ = ["ANSWER_MARGIN_SECONDS", "QUICK_SECONDS", "SILENCE_SECONDS", "AnswerBoundConnection", "Silence",
           "bound_answers"]

log = logging.getLogger("app.storage")

RV = TypeVar("RV")

# Beyond the server's statement timeout: time for its cancellation to reach us over a slow link.
ANSWER_MARGIN_SECONDS = 2.0
# After an unanswered wait or connect: how long no new connection is tried, and how long a wait may then take.
SILENCE_SECONDS = 2.0
QUICK_SECONDS = 0.5
_INTERVAL = 0.1   # psycopg's own polling interval (how soon a Ctrl-C is seen)


class Silence:
    """Whether an engine's database went unanswered lately, shared by its connections (and threads)."""

    def __init__(self, seconds: float = SILENCE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds, self._clock = seconds, clock
        self._until = 0.0
        self._lock = threading.Lock()

    def began(self) -> None:
        with self._lock:
            self._until = self._clock() + self._seconds

    def ended(self) -> None:
        if self._until:   # read without the lock: the common case (never silent) costs one attribute read
            with self._lock:
                self._until = 0.0

    def now(self) -> bool:
        return bool(self._until) and self._clock() < self._until


class AnswerBoundConnection(psycopg.Connection[tuple[object, ...]]):
    """``psycopg.Connection`` whose waits for the server end after ``answer_seconds`` (``None``: never), and after
    ``QUICK_SECONDS`` while its ``silence`` lasts."""

    answer_seconds: float | None = None
    silence: Silence | None = None

    def wait(self, gen: PQGen[RV], interval: float = _INTERVAL, timeout: float | None = None) -> RV:
        if timeout is not None:   # psycopg's own bound (a cancellation's): as it is
            return super().wait(gen, interval=interval, timeout=timeout)
        silence = self.silence
        bound = self.answer_seconds
        if silence is not None and silence.now():
            bound = QUICK_SECONDS if bound is None else min(bound, QUICK_SECONDS)
        try:
            answered = super().wait(gen, interval=interval, timeout=bound)
        except _WaitTimeout:
            if silence is not None:
                silence.began()
            # Mid-protocol, the connection cannot be used again: closed, so the pool drops it.
            log.error("the database did not answer within %.1f s: connection closed", bound)
            self.close()
            raise psycopg.OperationalError(f"the database did not answer within {bound:.1f} s") from None
        if silence is not None:
            silence.ended()
        return answered


def bound_answers(engine: Engine, seconds: float | None) -> None:
    """Open ``engine``'s PostgreSQL (psycopg) connections as ``AnswerBoundConnection``s bounded by ``seconds``."""

    silence = Silence()

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: object, record: object, cargs: list[object],
                 cparams: dict[str, object]) -> AnswerBoundConnection:
        if silence.now():
            raise psycopg.OperationalError("the database stopped answering moments ago: not connecting again yet")
        try:
            connection = AnswerBoundConnection.connect(*cargs, **cparams)  # type: ignore[arg-type]
        except psycopg.errors.ConnectionTimeout:
            silence.began()
            raise
        connection.answer_seconds, connection.silence = seconds, silence
        return connection
