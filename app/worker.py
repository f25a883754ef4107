"""The background worker: delivers the notification outbox and sends again what a back end
could not take at the time.

Each tick (``NOTIFY_INTERVAL_SECONDS``, 1 s by default, so a receipt reaches the provider
within seconds of the confirmation) runs one delivery pass of the outbox; complaints and
outage reports kept while the incident system was down are forwarded every
``WORKER_INTERVAL_SECONDS``; the back office's notice feed (zone outages and restorations, bills
...) is read every ``NOTICE_POLL_SECONDS`` and turned into outbox rows. One pass of everything is ``run_once``; ``run_forever``
repeats until stopped.
"""

from __future__ import annotations

import logging
import threading
import time

from dialogs.incidents import resend_pending_tickets

from .factory import build_deps, build_dispatcher, build_notice_relay
from .settings import Settings
from .storage import make_sessions

__all__ = ["run_forever", "run_once"]

log = logging.getLogger("worker")


def run_once(settings: Settings) -> dict[str, int]:
    sessions = make_sessions(settings.database_url)
    deps = build_deps(settings, sessions)
    assert deps.incidents is not None and deps.pending_tickets is not None
    noticed = build_notice_relay(settings, sessions).run_once()
    delivered = build_dispatcher(settings, sessions).run_once()
    return {"tickets_sent": resend_pending_tickets(deps.incidents, deps.pending_tickets),
            "notices_queued": noticed,
            "notifications_sent": delivered.sent, "notifications_retried": delivered.retried,
            "notifications_failed": delivered.failed}


def run_forever(settings: Settings, interval_seconds: float = 30.0, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    sessions = make_sessions(settings.database_url)
    deps = build_deps(settings, sessions)
    dispatcher = build_dispatcher(settings, sessions)
    relay = build_notice_relay(settings, sessions)
    assert deps.incidents is not None and deps.pending_tickets is not None
    tick = max(0.05, min(settings.notify_interval_seconds, interval_seconds))
    log.info("worker started: outbox every %.1f s, kept tickets every %.0f s", tick, interval_seconds)
    next_tickets = next_notices = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_notices:
            next_notices = time.monotonic() + settings.notice_poll_seconds
            try:
                relay.run_once()        # zone broadcasts and customer events, before this pass sends
            except Exception:
                log.exception("notice feed pass failed; next pass in %.1f s", settings.notice_poll_seconds)
        try:
            delivered = dispatcher.run_once()
            if delivered.sent or delivered.failed or delivered.requeued:
                log.info("outbox: %s", delivered)
        except Exception:
            log.exception("outbox pass failed; next pass in %.1f s", tick)
        if time.monotonic() >= next_tickets:
            next_tickets = time.monotonic() + interval_seconds
            try:
                sent = resend_pending_tickets(deps.incidents, deps.pending_tickets)
                if sent:
                    log.info("forwarded %d kept ticket(s)", sent)
            except Exception:
                log.exception("worker pass failed; next pass in %.0f s", interval_seconds)
        stop.wait(tick)
