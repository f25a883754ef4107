"""The background worker: sends again what a back end could not take at the time.

Today: complaints and outage reports kept while the incident system was down, and
payments that never heard back from the provider (``reconcile_payments``: their status is
asked and settled as a callback would be). The notification outbox (SMS receipts) joins
it with the notification work. One pass is ``run_once``; ``run_forever`` repeats it until stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from dialogs.incidents import resend_pending_tickets
from dialogs.payments import reconcile_pending
from dialogs.registry import Deps

from .factory import build_deps
from .settings import Settings
from .storage import make_sessions

__all__ = ["reconcile_payments", "run_forever", "run_once"]

log = logging.getLogger("worker")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def reconcile_payments(deps: Deps, settings: Settings, now: datetime) -> dict[str, int]:
    """One pass over the payments pending past ``PAYMENT_STATUS_AFTER_SECONDS`` (see ``reconcile_pending``)."""
    counts = reconcile_pending(deps, now, settings.payment_status_after_seconds)
    if any(counts.values()):
        log.info("payments reconciled: %s", counts)
    return counts


def run_once(settings: Settings, clock: Callable[[], datetime] = _utcnow) -> dict[str, int]:
    deps = build_deps(settings, make_sessions(settings.database_url))
    assert deps.incidents is not None and deps.pending_tickets is not None
    done = {"tickets_sent": resend_pending_tickets(deps.incidents, deps.pending_tickets)}
    # Payment counts appear only when the pass did something with payments.
    done.update({f"payments_{k}": v for k, v in reconcile_payments(deps, settings, clock()).items() if v})
    return done


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
        try:   # separate, so a failure of one job never starves the other
            reconcile_payments(deps, settings, _utcnow())
        except Exception:
            log.exception("payment reconciliation failed; next pass in %.0f s", interval_seconds)
        stop.wait(interval_seconds)
