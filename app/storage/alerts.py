"""``Subscriptions`` (alert consent) and ``Outbox`` (messages kept until sent) on SQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialogs.stores import Subscription

from ..settings import utc_now
from .delivery import SqlDeliveryQueue
from .models import OutboxEventRow, PreferenceRow, SubscriptionRow, stored_dedupe_key
from .outbox_seal import SECRET_FIELDS, OutboxSeal

__all__ = ["SqlOutbox", "SqlSubscriptions"]


def _sub(row: SubscriptionRow) -> Subscription:
    return Subscription(row.msisdn, row.topic, row.scope, row.channel, row.active, row.language)


class SqlSubscriptions:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _row(self, db: Session, msisdn: str, topic: str, scope: str) -> SubscriptionRow | None:
        return db.scalars(select(SubscriptionRow).where(SubscriptionRow.msisdn == msisdn,
                                                        SubscriptionRow.topic == topic,
                                                        SubscriptionRow.scope == scope)).first()

    def _activate(self, db: Session, msisdn: str, topic: str, scope: str, channel: str,
                  language: str | None) -> SubscriptionRow:
        """The subscription made active in ``db`` (created if new); the caller commits."""
        row = self._row(db, msisdn, topic, scope)
        if row is None:
            row = SubscriptionRow(msisdn=msisdn, topic=topic, scope=scope, channel=channel, active=True,
                                  language=language)
            db.add(row)
        else:
            row.active, row.channel = True, channel
            row.language = language or row.language
        return row

    def subscribe(self, msisdn: str, topic: str, scope: str = "", channel: str = "sms",
                  language: str | None = None) -> Subscription:
        with self._sessions() as db:
            row = self._activate(db, msisdn, topic, scope, channel, language)
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                existing = self._row(db, msisdn, topic, scope)
                assert existing is not None
                return _sub(existing)
            return _sub(row)

    def unsubscribe(self, msisdn: str, topic: str, scope: str = "") -> None:
        with self._sessions() as db:
            row = self._row(db, msisdn, topic, scope)
            if row is not None:
                row.active = False
                db.commit()

    def renew_power_back(self, msisdn: str, zone: str, scopes: Collection[str]) -> int:
        """``notify.PowerBackRequests``: the customer's "SMS me when power is back" that a restoration of
        ``zone`` ended (for one of ``scopes``: the zone or its outages) made again, for the zone (the outage
        it named is over; a new one keeps the zone dark), when the restoration's message was not sent."""
        with self._sessions() as db:
            ended = db.scalars(select(SubscriptionRow).where(
                SubscriptionRow.msisdn == msisdn, SubscriptionRow.topic == "power_back",
                SubscriptionRow.scope.in_(list(scopes)), SubscriptionRow.active.is_(False))).all()
            if not ended:
                return 0
            self._activate(db, msisdn, "power_back", zone, ended[0].channel, ended[0].language)
            try:
                db.commit()
            except IntegrityError:   # made meanwhile by the customer: active either way
                db.rollback()
            return len(ended)

    def for_user(self, msisdn: str) -> list[Subscription]:
        with self._sessions() as db:
            rows = db.scalars(select(SubscriptionRow).where(SubscriptionRow.msisdn == msisdn,
                                                            SubscriptionRow.active.is_(True))
                              .order_by(SubscriptionRow.id)).all()
            return [_sub(r) for r in rows]

    def subscribers(self, topic: str, scope: str) -> list[Subscription]:
        with self._sessions() as db:
            rows = db.scalars(select(SubscriptionRow).where(SubscriptionRow.topic == topic,
                                                            SubscriptionRow.scope == scope,
                                                            SubscriptionRow.active.is_(True))
                              .order_by(SubscriptionRow.id)).all()
            return [_sub(r) for r in rows]


class SqlOutbox:
    """Messages queued for the worker; one-time codes and prepaid tokens sealed (``OutboxSeal``), rows
    stamped on ``clock``. Without a seal, a payload carrying a secret field is refused: no code or token is
    ever kept in clear."""

    def __init__(self, sessions: sessionmaker[Session], seal: OutboxSeal | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._sessions, self._seal, self._clock = sessions, seal, clock

    def add(self, *, kind: str, msisdn: str, language: str, payload: dict[str, Any], dedupe_key: str,
            channel: str | None = None, note: str | None = None) -> bool:
        """Queue a message; ``channel`` forces one (an e-mail code goes to the address it proves), else
        the row is marked with the channel the customer chose (the dispatcher checks it again at send)."""
        dedupe_key = stored_dedupe_key(dedupe_key)
        with self._sessions() as db:
            if db.scalars(select(OutboxEventRow.id).where(OutboxEventRow.dedupe_key == dedupe_key)).first():
                return False
            if channel is None:
                channel = db.scalars(select(PreferenceRow.notify_channel)
                                     .where(PreferenceRow.msisdn == msisdn)).first() or "sms"
            kept, sealed = self._sealed(payload)
            db.add(OutboxEventRow(dedupe_key=dedupe_key, kind=kind, msisdn=msisdn, language=language,
                                  payload=json.dumps(kept, default=str), sealed=sealed, status="pending",
                                  attempts=0, channel=channel, created_at=self._clock(),
                                  last_error=note[:120] if note else None))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                return False
            return True

    def queued(self, dedupe_key: str) -> bool:
        with self._sessions() as db:
            return db.scalars(select(OutboxEventRow.id)
                              .where(OutboxEventRow.dedupe_key == stored_dedupe_key(dedupe_key))).first() is not None

    def add_sent(self, *, kind: str, msisdn: str, language: str, payload: dict[str, Any], dedupe_key: str,
                 channel: str, message_ids: list[str]) -> bool:
        """Record a message its channel sent at once (``SqlDeliveryQueue.record_sent``), its secrets sealed as
        ``add`` seals them; False when ``dedupe_key`` is there already."""
        kept, sealed = self._sealed(payload)
        return SqlDeliveryQueue(self._sessions, self._clock).record_sent(
            kind=kind, msisdn=msisdn, language=language, payload=kept, sealed=sealed, dedupe_key=dedupe_key,
            channel=channel, message_ids=message_ids)

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """Events not yet sent, oldest first, payloads opened as the worker will send them (for tests)."""
        with self._sessions() as db:
            rows = db.scalars(select(OutboxEventRow).where(OutboxEventRow.status == "pending")
                              .order_by(OutboxEventRow.id).limit(limit)).all()
            return [{"id": r.id, "kind": r.kind, "msisdn": r.msisdn, "language": r.language,
                     "payload": self._opened(json.loads(r.payload), r.sealed), "dedupe_key": r.dedupe_key}
                    for r in rows]

    def _sealed(self, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        if self._seal is not None:
            return self._seal.seal(payload)
        if any(payload.get(name) is not None for name in SECRET_FIELDS):   # a receipt without token has none
            raise ValueError("SqlOutbox without a seal cannot queue a secret field (a one-time code, a token)")
        return payload, None

    def _opened(self, payload: dict[str, Any], sealed: str | None) -> dict[str, Any]:
        return self._seal.open(payload, sealed) if self._seal is not None else payload
