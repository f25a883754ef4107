"""The background worker: sends again what a back end could not take at the time.

Today: complaints and outage reports kept while the incident system was down. The
notification outbox (SMS receipts) joins it with the notification work. One pass is
``run_once``; ``run_forever`` repeats it until stopped, and applies the retention purge
(``app/storage/retention.py``) every ``purge_interval_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from dialogs.incidents import resend_pending_tickets

from .factory import build_deps
from .settings import Settings
from .storage import make_sessions
from .storage.retention import purge

__all__ = ["PurgeSchedule", "run_forever", "run_once"]

log = logging.getLogger("worker")


def run_once(settings: Settings) -> dict[str, int]:
    deps = build_deps(settings, make_sessions(settings.database_url))
    assert deps.incidents is not None and deps.pending_tickets is not None
    return {"tickets_sent": resend_pending_tickets(deps.incidents, deps.pending_tickets)}


class PurgeSchedule:
    """The retention purge, at most once per ``interval_seconds`` (first pass at start-up; 0: never)."""

    def __init__(self, sessions: sessionmaker[Session], interval_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._interval = interval_seconds
        self._clock = clock
        self._last: float | None = None

    def run_if_due(self) -> dict[str, int] | None:
        if self._interval <= 0:
            return None
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return None
        counts = purge(self._sessions)
        self._last = now   # after the purge: a failed one is tried again at the next pass
        if any(counts.values()):
            log.info("retention purge: %s", {name: n for name, n in counts.items() if n})
        return counts


def run_forever(settings: Settings, interval_seconds: float = 30.0, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    sessions = make_sessions(settings.database_url)
    deps = build_deps(settings, sessions)
    purger = PurgeSchedule(sessions, settings.purge_interval_seconds)
    assert deps.incidents is not None and deps.pending_tickets is not None
    log.info("worker started, every %.0f s", interval_seconds)
    while not stop.is_set():
        try:
            sent = resend_pending_tickets(deps.incidents, deps.pending_tickets)
            if sent:
                log.info("forwarded %d kept ticket(s)", sent)
        except Exception:
            log.exception("worker pass failed; next pass in %.0f s", interval_seconds)
        try:
            purger.run_if_due()
        except Exception:
            log.exception("retention purge failed; tried again at the next pass")
        stop.wait(interval_seconds)
