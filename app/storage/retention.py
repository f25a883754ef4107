"""How long the product keeps what it stores, and the purge that enforces it (GDPR: storage limitation).

Each table has a documented period (``RETENTION``, also in the README). The purge runs in two
phases: first it **scrubs** what is most sensitive in rows that are still kept (prepaid tokens,
message texts, complaint free text, gateway error text), then it **deletes** whole rows past their
period. Only finished rows are touched: a pending payment, an unsent message or a ticket still to
forward is never purged by age. Run by the worker (``PURGE_INTERVAL_SECONDS``) and by
``python -m app purge``.

| table                | scrubbed (days)                              | deleted (days)                 |
|----------------------|----------------------------------------------|--------------------------------|
| outbox_events        | message payload and tokens, once sent/failed: 7 | sent or failed: 90          |
| payment_intents      | prepaid token, once final: 30                | succeeded or failed: 400; never sent (`not_started`): `PAYMENT_NOT_STARTED_KEEP_DAYS` (30) |
| processed_callbacks  | -                                            | 30                             |
| sms_inbox            | (its text is erased once answered)           | answered: 30                   |
| message_claims       | - (no text, no number)                       | 30                             |
| pending_tickets      | complaint text, once sent/refused: 30        | sent or refused: 180           |
| session_audit        | gateway error text: 30                       | 180                            |
| security_events      | -                                            | 365                            |
| subscriptions        | -                                            | withdrawn consent: 365         |
| preferences          | unconfirmed e-mail address and its code, 7 days after the code expired | -        |
| email_stops          | -                                            | address no one has confirmed any more: 30 |
| account_links, pin_credentials, preferences | -                     | kept while the link, PIN or preference exists |

A confirmed e-mail address is kept while the customer keeps it: confirming another one replaces it
at once (nothing of the old one stays), and an unsubscribe keeps the address (and its stop) so that
the stop goes on being honoured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, true, update
from sqlalchemy.orm import Session, sessionmaker

from .models import (
    EmailStopRow,
    MessageClaimRow,
    OutboxEventRow,
    OutboxPartRow,
    PaymentIntentRow,
    PendingTicketRow,
    PreferenceRow,
    ProcessedCallbackRow,
    SecurityEventRow,
    SessionAuditRow,
    SmsInboxRow,
    SubscriptionRow,
    WhatsAppWindowRow,
)

__all__ = ["PURGE_STATEMENT_TIMEOUT_SECONDS", "RETENTION", "Rule", "purge", "retention_rules"]

# The purge's deletes may each take minutes on a large table the first time: its own statement bound, not the
# few seconds a customer's hop may wait (``make_sessions``); its lock waits stay short.
PURGE_STATEMENT_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Rule:
    """One retention rule: rows of ``model`` matching ``finished`` and older than ``days`` (by ``age``).

    ``scrub`` gives the columns to blank; without it the rows are deleted.
    """

    name: str
    model: Any
    days: int
    age: Any                   # a timestamp column (or expression)
    finished: Any = None       # a condition; None: every row
    scrub: dict[str, Any] | None = None


def retention_rules(*, not_started_days: int = 30) -> tuple[Rule, ...]:
    """The rules, with the periods that are settings (``PAYMENT_NOT_STARTED_KEEP_DAYS``)."""
    return (*_RULES[:_NOT_STARTED_AT], Rule(
        # A payment the provider never got (the customer was told nothing was charged) and that no later word
        # by our key turned up: nothing to settle, nothing owed. One it never answered about is ``unanswered``
        # instead, an agent's, and stays.
        "payment_intents.not_started", PaymentIntentRow, not_started_days, PaymentIntentRow.created_at,
        and_(PaymentIntentRow.status == "not_started", PaymentIntentRow.provider_payment_id.is_(None))),
        *_RULES[_NOT_STARTED_AT:])


# Scrubbing rules come first: tokens and free text go before the rows that carry them.
_RULES: tuple[Rule, ...] = (
    Rule("outbox_events.payload", OutboxEventRow, 7, OutboxEventRow.created_at,
         and_(OutboxEventRow.status.in_(("sent", "failed")), OutboxEventRow.payload != "{}"),
         scrub={"payload": "{}"}),
    Rule("payment_intents.token", PaymentIntentRow, 30, PaymentIntentRow.updated_at,
         and_(PaymentIntentRow.status.in_(("succeeded", "failed")), PaymentIntentRow.token.is_not(None)),
         scrub={"token": None}),
    Rule("pending_tickets.description", PendingTicketRow, 30, PendingTicketRow.created_at,
         and_(PendingTicketRow.status.in_(("sent", "refused")), PendingTicketRow.description != ""),
         scrub={"description": ""}),
    Rule("session_audit.gateway_error", SessionAuditRow, 30,
         func.coalesce(SessionAuditRow.ended_at, SessionAuditRow.started_at),
         SessionAuditRow.gateway_error.is_not(None), scrub={"gateway_error": None}),
    # An address typed but never proved (its code expired unused): nobody's, nothing to keep it for.
    Rule("preferences.email_pending", PreferenceRow, 7, PreferenceRow.email_code_expires_at,
         PreferenceRow.email_pending.is_not(None),
         scrub={"email_pending": None, "email_code_hash": None, "email_code_expires_at": None,
                "email_code_tries": 0}),
    Rule("outbox_events", OutboxEventRow, 90, OutboxEventRow.created_at,
         OutboxEventRow.status.in_(("sent", "failed"))),
    # The provider ids of a long message's parts: of use while reports about them may come, gone with the rows.
    Rule("outbox_parts", OutboxPartRow, 90, OutboxPartRow.created_at),
    Rule("payment_intents", PaymentIntentRow, 400, PaymentIntentRow.updated_at,
         PaymentIntentRow.status.in_(("succeeded", "failed"))),
    Rule("processed_callbacks", ProcessedCallbackRow, 30, ProcessedCallbackRow.received_at),
    # An incoming SMS kept while the engine could not run it: once answered, only its number and id remain.
    Rule("sms_inbox", SmsInboxRow, 30, SmsInboxRow.received_at, SmsInboxRow.status != "pending"),
    # Which incoming message ids were claimed to run: of use while a provider may deliver them again.
    Rule("message_claims", MessageClaimRow, 30, MessageClaimRow.claimed_at),
    # Who wrote to us on WhatsApp and when: of use for 24 hours (the window), shown to agents a while longer.
    Rule("whatsapp_windows", WhatsAppWindowRow, 30, WhatsAppWindowRow.last_inbound_at),
    Rule("pending_tickets", PendingTicketRow, 180, PendingTicketRow.created_at,
         PendingTicketRow.status.in_(("sent", "refused"))),
    Rule("session_audit", SessionAuditRow, 180,
         func.coalesce(SessionAuditRow.ended_at, SessionAuditRow.started_at)),
    Rule("security_events", SecurityEventRow, 365, SecurityEventRow.occurred_at),
    Rule("subscriptions", SubscriptionRow, 365, SubscriptionRow.updated_at,
         SubscriptionRow.active.is_(False)),
    # A stop is kept while its address is someone's confirmed address (to be honoured); then 30 days.
    Rule("email_stops", EmailStopRow, 30, EmailStopRow.created_at,
         ~exists().where(PreferenceRow.email == EmailStopRow.address)),
)
_NOT_STARTED_AT = next(i for i, rule in enumerate(_RULES) if rule.name == "processed_callbacks")
RETENTION: tuple[Rule, ...] = retention_rules()


def _cutoff(now: datetime, days: int, db: Session) -> datetime:
    cutoff = now.astimezone(UTC) - timedelta(days=days)
    # SQLite keeps timestamps as naive UTC text; comparing with an aware value would compare offsets too.
    return cutoff.replace(tzinfo=None) if db.get_bind().dialect.name == "sqlite" else cutoff


def _unchanged_stamps(model: Any) -> dict[str, Any]:
    """``updated_at = updated_at``: scrubbing must not make a row look new, or it would never be deleted."""
    return {column.name: column for column in model.__table__.columns if column.onupdate is not None}


def purge(sessions: sessionmaker[Session], now: datetime | None = None,
          rules: tuple[Rule, ...] = RETENTION) -> dict[str, int]:
    """Apply ``rules`` in order, each in its own transaction; returns rows scrubbed or deleted per rule."""
    now = now or datetime.now(UTC)
    counts: dict[str, int] = {}
    for rule in rules:
        with sessions() as db, db.begin():
            where = and_(rule.age < _cutoff(now, rule.days, db), rule.finished if rule.finished is not None else true())
            statement = (update(rule.model).where(where).values(**_unchanged_stamps(rule.model), **rule.scrub)
                         if rule.scrub is not None else delete(rule.model).where(where))
            result = db.execute(statement.execution_options(synchronize_session=False))
            counts[rule.name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return counts
