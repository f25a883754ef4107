"""The background worker: sends again what a back end could not take at the time.

Today: complaints and outage reports kept while the incident system was down. The
notification outbox (SMS receipts) joins it with the notification work. One pass is
``run_once``; ``run_forever`` repeats it until stopped.
"""

from __future__ import annotations

import logging
import threading

from dialogs.incidents import resend_pending_tickets

from .factory import build_deps
from .settings import Settings
from .storage import make_sessions

__all__ = ["run_forever", "run_once"]

log = logging.getLogger("worker")


def run_once(settings: Settings) -> dict[str, int]:
    deps = build_deps(settings, make_sessions(settings.database_url))
    assert deps.incidents is not None and deps.pending_tickets is not None
    return {"tickets_sent": resend_pending_tickets(deps.incidents, deps.pending_tickets)}


def run_forever(settings: Settings, interval_seconds: float = 30.0, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    deps = build_deps(settings, make_sessions(settings.database_url))
    assert deps.incidents is not None and deps.pending_tickets is not None
    log.info("worker started, every %.0f s", interval_seconds)
    while not stop.is_set():
        try:
            sent = resend_pending_tickets(deps.incidents, deps.pending_tickets)
            if sent:
                log.info("forwarded %d kept ticket(s)", sent)
        except Exception:
            log.exception("worker pass failed; next pass in %.0f s", interval_seconds)
        stop.wait(interval_seconds)
