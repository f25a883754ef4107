"""From the back office's notice feed to the outbox: zone broadcasts and customer events.

The worker reads the feed by cursor (``NoticeRelay.run_once``). Each notice becomes outbox rows in
one transaction that also moves the cursor, so a crash re-reads a notice at worst, and the
de-duplication key ``notice:<id>:<number>`` makes that harmless: every customer hears once.

Who hears what:

- ``outage_declared`` in a zone: the customers who opted in to outage alerts for that zone
  (``outage_zone``);
- ``power_restored``: those, plus every "SMS me when power is back" (``power_back``) for the zone or
  one of its outages; a ``power_back`` subscription is fulfilled by the message and ends;
- ``bill_issued``, ``low_credit``: the numbers that opted in to that topic for the account;
- ``ticket_status``, ``deferral_approved``: the customer who asked (no opt-in; STOP still applies).

A customer who sent STOP is left out here and, for rows already queued, by the dispatcher. Each
recipient gets the message in their chosen language (``preferences``), else the language of the
conversation in which they subscribed, else the default, on the channel they chose (SMS, WhatsApp,
e-mail; the dispatcher checks it again when sending).
A zone broadcast is one SELECT and one multi-row INSERT (10 000 subscribers in well under 10 s,
see ``bench/notify_broadcast.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from backend_clients.notices import FeedNotice, NoticePage
from dialogs.backends import BackendUnavailable

from .settings import utc_now
from .storage.models import (
    AccountLinkRow,
    FeedCursorRow,
    NotificationStopRow,
    OutboxEventRow,
    PreferenceRow,
    SubscriptionRow,
)

__all__ = ["NoticeFeed", "NoticeRelay", "Recipient"]

log = logging.getLogger("broadcast")

CURSOR = "backoffice_notices"
# Customer events that need an opt-in to the topic of the same name for the account.
OPT_IN_TOPICS = frozenset({"bill_issued", "low_credit"})
# Customer events the customer asked for themselves: sent unless STOP.
REQUESTED = frozenset({"ticket_status", "deferral_approved"})


class NoticeFeed(Protocol):
    def after(self, cursor: int, limit: int = 200) -> NoticePage:
        """Events after ``cursor``; ``BackendUnavailable`` when the back office is down."""


@dataclass(frozen=True, slots=True)
class Recipient:
    msisdn: str
    channel: str
    language: str | None = None     # the conversation's when they subscribed


class NoticeRelay:
    def __init__(self, sessions: sessionmaker[Session], feed: NoticeFeed, default_language: str = "fr",
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._sessions, self._feed, self._default_language = sessions, feed, default_language
        self._clock = clock

    def run_once(self, limit: int = 200) -> int:
        """Read what the feed has after our cursor; returns how many outbox rows were queued."""
        queued = 0
        while True:
            try:
                page = self._feed.after(self.cursor(), limit)
            except BackendUnavailable as exc:
                log.info("notice feed unavailable, next pass will retry: %s", exc)
                return queued
            for notice in page.notices:
                queued += self.apply(notice)
            if len(page.notices) < limit:
                return queued

    def cursor(self) -> int:
        with self._sessions() as db:
            row = db.get(FeedCursorRow, CURSOR)
            return row.position if row is not None else 0

    def apply(self, notice: FeedNotice) -> int:
        """Queue the messages of one notice and move the cursor past it, in one transaction."""
        with self._sessions.begin() as db:
            recipients = self._recipients(db, notice)
            queued = self._queue(db, notice, recipients)
            cursor = db.get(FeedCursorRow, CURSOR, with_for_update=True)
            if cursor is None:
                db.add(FeedCursorRow(name=CURSOR, position=notice.id))
            else:
                cursor.position = max(cursor.position, notice.id)
        log.info("notice %d (%s%s): %d message(s) queued for %d recipient(s)", notice.id, notice.kind,
                 f" zone {notice.zone}" if notice.zone else "", queued, len(recipients))
        return queued

    # ------------------------------------------------------------ who
    def _recipients(self, db: Session, notice: FeedNotice) -> list[Recipient]:
        if notice.kind in ("outage_declared", "power_restored"):
            wanted = [and_(SubscriptionRow.topic == "outage_zone", SubscriptionRow.scope == notice.zone)]
            if notice.kind == "power_restored":
                scopes = [notice.zone or "", *map(str, notice.fields.get("outage_ids") or [])]
                power_back = and_(SubscriptionRow.topic == "power_back", SubscriptionRow.scope.in_(scopes))
                wanted.append(power_back)
            found = self._subscribed(db, wanted)
            if notice.kind == "power_restored":
                # "SMS me when power is back" is answered once: the subscription is fulfilled.
                db.execute(update(SubscriptionRow).where(power_back, SubscriptionRow.active.is_(True))
                           .values(active=False))
            return found
        numbers = [notice.msisdn] if notice.msisdn else self._linked(db, notice.account_number)
        if notice.kind in OPT_IN_TOPICS:
            return self._subscribed(db, [and_(SubscriptionRow.topic == notice.kind,
                                              SubscriptionRow.scope == (notice.account_number or ""),
                                              SubscriptionRow.msisdn.in_(numbers))])
        if notice.kind in REQUESTED:
            stopped = set(db.scalars(select(NotificationStopRow.msisdn)
                                     .where(NotificationStopRow.msisdn.in_(numbers))))
            return [Recipient(n, "sms") for n in dict.fromkeys(numbers) if n not in stopped]
        log.warning("notice %d: unknown kind '%s', skipped", notice.id, notice.kind)
        return []

    @staticmethod
    def _subscribed(db: Session, conditions: Iterable[Any]) -> list[Recipient]:
        stopped = select(NotificationStopRow.msisdn)
        rows = db.execute(select(SubscriptionRow.msisdn, SubscriptionRow.channel, SubscriptionRow.language).where(
            SubscriptionRow.active.is_(True), SubscriptionRow.msisdn.not_in(stopped),
            or_(*conditions)).order_by(SubscriptionRow.id)).all()
        unique: dict[str, Recipient] = {}
        for msisdn, channel, language in rows:
            unique.setdefault(msisdn, Recipient(msisdn, channel or "sms", language))
        return list(unique.values())

    @staticmethod
    def _linked(db: Session, account_number: str | None) -> list[str]:
        if not account_number:
            return []
        return list(db.scalars(select(AccountLinkRow.msisdn).where(AccountLinkRow.account_number == account_number)
                               .order_by(AccountLinkRow.id)))

    # ------------------------------------------------------------ what
    def _queue(self, db: Session, notice: FeedNotice, recipients: list[Recipient]) -> int:
        if not recipients:
            return 0
        chosen = self._preferences(db, [r.msisdn for r in recipients])
        payload = json.dumps(self._payload(notice), default=str)
        queued_at = self._clock()    # the product's clock, as every outbox stamp
        rows = [{"dedupe_key": f"notice:{notice.id}:{r.msisdn}", "kind": notice.kind, "msisdn": r.msisdn,
                 "language": chosen.get(r.msisdn, (None, None))[0] or r.language or notice.fields.get("language")
                 or self._default_language,
                 "payload": payload, "status": "pending", "attempts": 0, "created_at": queued_at,
                 "channel": chosen.get(r.msisdn, (None, None))[1] or r.channel}
                for r in recipients]
        statement = _insert_ignoring_duplicates(db)
        count = db.connection().execute(statement, rows).rowcount   # Core executemany: one multi-row INSERT
        return len(rows) if count is None or count < 0 else int(count)

    @staticmethod
    def _payload(notice: FeedNotice) -> dict[str, Any]:
        payload = {**notice.fields, "zone": notice.zone, "account_number": notice.account_number}
        if notice.kind == "outage_declared" and not notice.fields.get("eta"):
            payload["no_eta"] = True       # the template without a time
        return {k: v for k, v in payload.items() if v is not None}

    @staticmethod
    def _preferences(db: Session, numbers: list[str]) -> dict[str, tuple[str | None, str | None]]:
        """The language and the channel each recipient chose, if any."""
        found: dict[str, tuple[str | None, str | None]] = {}
        for start in range(0, len(numbers), 1000):     # IN lists stay reasonable
            chunk = numbers[start:start + 1000]
            found.update({m: (lang, channel) for m, lang, channel in db.execute(
                select(PreferenceRow.msisdn, PreferenceRow.language, PreferenceRow.notify_channel)
                .where(PreferenceRow.msisdn.in_(chunk)))})
        return found


def _insert_ignoring_duplicates(db: Session) -> Any:
    """INSERT ... ON CONFLICT (dedupe_key) DO NOTHING on PostgreSQL and SQLite."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(OutboxEventRow).on_conflict_do_nothing(index_elements=["dedupe_key"])
    if dialect == "sqlite":
        return sqlite.insert(OutboxEventRow).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return insert(OutboxEventRow).prefix_with("IGNORE")
