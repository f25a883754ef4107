"""The background worker: delivers the notification outbox and sends again what a back end
could not take at the time.

Each tick (``NOTIFY_INTERVAL_SECONDS``, 1 s by default, so a receipt reaches the provider
within seconds of the confirmation) runs the incoming messages (SMS, WhatsApp) kept while the engine
could not run them (``channels/sms_inbox.py``: their replies join the outbox) and one delivery pass of
the outbox, and the back office's notice feed (zone outages and restorations, bills, tickets ...) is read every ``NOTICE_POLL_SECONDS``
and turned into outbox rows. Every ``WORKER_INTERVAL_SECONDS`` it also forwards complaints and outage
reports kept while the incident system was down, and asks the provider about payments that never heard
back (``reconcile_payments``: their status is settled as a callback would be); the retention purge
(``app/storage/retention.py``) runs every ``PURGE_INTERVAL_SECONDS``. One pass of everything but the
purge is ``run_once``; ``run_forever`` repeats until stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from dialogs.incidents import resend_pending_tickets
from dialogs.payments import post_owed_to_billing, reconcile_pending
from dialogs.registry import Deps
from dialogs.vending import vend_owed_tokens

from .factory import build_deps, build_dispatcher, build_inbox_drain, build_notice_relay, build_sessions
from .ops import Metrics
from .settings import Settings
from .storage.retention import PURGE_STATEMENT_TIMEOUT_SECONDS, RETENTION, Rule, purge, retention_rules

__all__ = ["PurgeSchedule", "reconcile_payments", "run_forever", "run_once"]

log = logging.getLogger("worker")


def reconcile_payments(deps: Deps, settings: Settings, now: datetime,
                       metrics: Metrics | None = None) -> dict[str, int]:
    """One pass over the payments pending past ``PAYMENT_STATUS_AFTER_SECONDS`` and those without the
    provider's id (see ``reconcile_pending``); the ones given up count in ``payments_unresolved_total``, the
    ones never sent that the provider never answered about in ``payments_unanswered_total``. Then
    the agents' "paid" settlements billing has not recorded yet (it was down) are posted again, and the tokens
    owed on prepaid purchases settled by hand are asked of the vending system again (``vend_owed_tokens``)."""
    counts = reconcile_pending(deps, now, settings.payment_status_after_seconds,
                               give_up_seconds=settings.payment_unrecorded_give_up_seconds)
    counts["posted_to_billing"] = post_owed_to_billing(deps)
    counts["tokens_vended"] = vend_owed_tokens(deps, now)
    if any(counts.values()):
        log.info("payments reconciled: %s", counts)
    if metrics is not None and counts["unresolved"]:
        metrics.payments_unresolved.inc(counts["unresolved"])
    if metrics is not None and counts["unanswered"]:
        metrics.payments_unanswered.inc(counts["unanswered"])
    return counts


def run_once(settings: Settings, clock: Callable[[], datetime] | None = None,
             metrics: Metrics | None = None) -> dict[str, int]:
    """One pass of everything but the purge; ``clock`` (default: the settings' clock) dates the payments'."""
    clock = clock or settings.clock
    sessions = build_sessions(settings)
    deps = build_deps(settings, sessions)
    assert deps.incidents is not None and deps.pending_tickets is not None
    done = {"tickets_sent": resend_pending_tickets(deps.incidents, deps.pending_tickets)}
    # Payment counts appear only when the pass did something with payments.
    done.update({f"payments_{k}": v for k, v in reconcile_payments(deps, settings, clock(), metrics).items() if v})
    noticed = build_notice_relay(settings, sessions).run_once()
    if noticed:
        done["notices_queued"] = noticed
    drain = build_inbox_drain(settings)
    if drain is not None:
        # Before the delivery pass: a reply it queues goes out in this same pass.
        kept = drain.run_once()
        done.update({f"kept_{k}": v for k, v in (("answered", kept.answered), ("late", kept.late),
                                                 ("waiting", kept.waiting)) if v})
    delivered = build_dispatcher(settings, sessions).run_once()
    # Likewise for notifications.
    done.update({f"notifications_{k}": v for k, v in (("sent", delivered.sent), ("retried", delivered.retried),
                                                       ("failed", delivered.failed), ("expired", delivered.expired))
                 if v})
    return done


class PurgeSchedule:
    """The retention purge, at most once per ``interval_seconds`` (first pass at start-up; 0: never)."""

    def __init__(self, sessions: sessionmaker[Session], interval_seconds: float,
                 clock: Callable[[], float] = time.monotonic, rules: tuple[Rule, ...] = RETENTION) -> None:
        self._sessions = sessions
        self._rules = rules
        self._interval = interval_seconds
        self._clock = clock
        self._last: float | None = None

    def run_if_due(self) -> dict[str, int] | None:
        if self._interval <= 0:
            return None
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return None
        counts = purge(self._sessions, rules=self._rules)
        self._last = now   # after the purge: a failed one is tried again at the next pass
        if any(counts.values()):
            log.info("retention purge: %s", {name: n for name, n in counts.items() if n})
        return counts


def run_forever(settings: Settings, interval_seconds: float = 30.0, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    metrics = Metrics()   # under `make run` its values reach /metrics through PROMETHEUS_MULTIPROC_DIR
    sessions = build_sessions(settings)
    deps = build_deps(settings, sessions)
    dispatcher = build_dispatcher(settings, sessions)
    purger = PurgeSchedule(build_sessions(settings, statement_timeout=PURGE_STATEMENT_TIMEOUT_SECONDS),
                           settings.purge_interval_seconds,
                           rules=retention_rules(not_started_days=settings.payment_not_started_keep_days))
    relay = build_notice_relay(settings, sessions)
    drain = build_inbox_drain(settings)
    assert deps.incidents is not None and deps.pending_tickets is not None
    tick = max(0.05, min(settings.notify_interval_seconds, interval_seconds))
    log.info("worker started: outbox every %.1f s, kept tickets and payments every %.0f s", tick, interval_seconds)
    next_slow_pass = next_notices = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_notices:
            next_notices = time.monotonic() + settings.notice_poll_seconds
            try:
                relay.run_once()        # zone broadcasts and customer events, before this pass sends
            except Exception:
                log.exception("notice feed pass failed; next pass in %.1f s", settings.notice_poll_seconds)
        if drain is not None:
            try:
                drain.run_once()        # kept incoming messages: their replies join this pass's outbox
            except Exception:
                log.exception("kept incoming messages pass failed; next pass in %.1f s", tick)
        try:
            delivered = dispatcher.run_once()
            if delivered.sent or delivered.failed or delivered.requeued:
                log.info("outbox: %s", delivered)
        except Exception:
            log.exception("outbox pass failed; next pass in %.1f s", tick)
        if time.monotonic() >= next_slow_pass:
            next_slow_pass = time.monotonic() + interval_seconds
            # Separate, so a failure of one job never starves the other.
            try:
                sent = resend_pending_tickets(deps.incidents, deps.pending_tickets)
                if sent:
                    log.info("forwarded %d kept ticket(s)", sent)
            except Exception:
                log.exception("worker pass failed; next pass in %.0f s", interval_seconds)
            try:
                reconcile_payments(deps, settings, settings.clock(), metrics)
            except Exception:
                log.exception("payment reconciliation failed; next pass in %.0f s", interval_seconds)
            try:
                purger.run_if_due()
            except Exception:
                log.exception("retention purge failed; tried again at the next pass")
        stop.wait(tick)
