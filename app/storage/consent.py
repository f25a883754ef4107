"""``Consent`` on SQL: topic subscriptions (the ``subscriptions`` table), the STOP list and the history
of every change (``consent_changes``), written in the same transaction as the change itself.

``SqlConsent`` is also a ``Subscriptions``: the menus' alert toggles and "SMS me when power is back"
go through it, so their changes are in the history too. An opt-in's history row keeps where the customer
said it (``channel``) apart from where its alerts go (``delivery``): a request made on USSD by a customer
whose messages go to WhatsApp is said on USSD, delivered on WhatsApp."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialogs.stores import ConsentChange, Subscription

from .alerts import SqlSubscriptions
from .models import ConsentChangeRow, NotificationStopRow, SubscriptionRow

__all__ = ["SqlConsent"]


class SqlConsent(SqlSubscriptions):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__(sessions)
        self._sessions = sessions

    # ------------------------------------------------------------ Consent
    def opt_in(self, msisdn: str, topic: str, scope: str = "", *, channel: str, source: str,
               language: str | None = None, delivery: str = "sms") -> None:
        self._opt_in(msisdn, topic, scope, delivery=delivery, channel=channel, source=source, language=language)

    def opt_out(self, msisdn: str, topic: str, scope: str = "", *, channel: str, source: str) -> None:
        with self._sessions.begin() as db:
            db.execute(update(SubscriptionRow).where(SubscriptionRow.msisdn == msisdn, SubscriptionRow.topic == topic,
                                                     SubscriptionRow.scope == scope).values(active=False))
            db.add(ConsentChangeRow(msisdn=msisdn, action="opt_out", topic=topic, scope=scope,
                                    channel=channel[:20], source=source[:40]))

    def stop_all(self, msisdn: str, *, channel: str, source: str) -> int:
        with self._sessions.begin() as db:
            result = db.execute(update(SubscriptionRow).where(SubscriptionRow.msisdn == msisdn,
                                                              SubscriptionRow.active.is_(True)).values(active=False))
            ended = cast(CursorResult[Any], result).rowcount or 0
            if db.get(NotificationStopRow, msisdn) is None:
                db.add(NotificationStopRow(msisdn=msisdn, channel=channel[:20], source=source[:40]))
            db.add(ConsentChangeRow(msisdn=msisdn, action="stop", topic="", scope="", channel=channel[:20],
                                    source=source[:40]))
        return int(ended)

    def start(self, msisdn: str, *, channel: str, source: str) -> None:
        with self._sessions.begin() as db:
            db.execute(delete(NotificationStopRow).where(NotificationStopRow.msisdn == msisdn))
            db.add(ConsentChangeRow(msisdn=msisdn, action="start", topic="", scope="", channel=channel[:20],
                                    source=source[:40]))

    def is_stopped(self, msisdn: str) -> bool:
        return bool(self.stopped_among([msisdn]))

    def stopped_among(self, msisdns: Collection[str]) -> set[str]:
        """Which of these numbers sent STOP (one query for a batch of messages)."""
        if not msisdns:
            return set()
        with self._sessions() as db:
            return set(db.scalars(select(NotificationStopRow.msisdn)
                                  .where(NotificationStopRow.msisdn.in_(list(set(msisdns))))))

    def subscribed_among(self, wanted: Collection[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which of these (number, topic, scope) are active subscriptions now (one query for a batch)."""
        if not wanted:
            return set()
        numbers = list({w[0] for w in wanted})
        topics = list({w[1] for w in wanted})
        with self._sessions() as db:
            rows = db.execute(select(SubscriptionRow.msisdn, SubscriptionRow.topic, SubscriptionRow.scope).where(
                SubscriptionRow.active.is_(True), SubscriptionRow.msisdn.in_(numbers),
                SubscriptionRow.topic.in_(topics))).all()
        return {(m, t, sc) for m, t, sc in rows} & set(wanted)

    def history(self, msisdn: str) -> list[ConsentChange]:
        with self._sessions() as db:
            rows = db.scalars(select(ConsentChangeRow).where(ConsentChangeRow.msisdn == msisdn)
                              .order_by(ConsentChangeRow.id)).all()
            return [ConsentChange(r.msisdn, r.action, r.topic, r.scope, r.channel, r.source, r.at, r.delivery or "")
                    for r in rows]

    # ------------------------------------------------------------ Subscriptions, with history
    def subscribe(self, msisdn: str, topic: str, scope: str = "", channel: str = "sms",
                  language: str | None = None) -> Subscription:
        # ``channel`` here is where the alerts go; where the customer asked is not known ("").
        return self._opt_in(msisdn, topic, scope, delivery=channel, channel="", source="self-service",
                            language=language)

    def unsubscribe(self, msisdn: str, topic: str, scope: str = "") -> None:
        self.opt_out(msisdn, topic, scope, channel="sms", source="self-service")

    def _opt_in(self, msisdn: str, topic: str, scope: str, *, delivery: str, channel: str,
                source: str, language: str | None = None) -> Subscription:
        for _ in range(2):   # a concurrent first subscription wins the unique key: read it back
            try:
                with self._sessions.begin() as db:
                    row = self._activate(db, msisdn, topic, scope, delivery, language)
                    # Asking for a message again is consent again: it lifts an earlier STOP.
                    db.execute(delete(NotificationStopRow).where(NotificationStopRow.msisdn == msisdn))
                    db.add(ConsentChangeRow(msisdn=msisdn, action="opt_in", topic=topic, scope=scope,
                                            channel=channel[:20], source=source[:40], delivery=delivery[:20]))
                    db.flush()
                    return Subscription(row.msisdn, row.topic, row.scope, row.channel, row.active)
            except IntegrityError:
                continue
        raise RuntimeError("subscription could not be written")
