"""The inbox on SQL (``channels.sms_inbox.Inbox``): incoming messages (SMS, WhatsApp) the engine could not run
at once, each with its channel and provider.

One row per provider message id (unique), so the provider posting a message again keeps nothing more. What
the customer wrote is sealed like the outbox's secrets (``OutboxSeal``: a message may be ``OUI 1234``, a
PIN) and erased once the message is settled. Rows are claimed as the outbox's are: held for a lease, with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so two workers never run the same message; a message behind an
older one of its sender on its channel that waits is not claimed (a sender's messages run in the order they
came; SMS and WhatsApp are two conversations). Every
stamp is on the product's clock (``Settings.clock``), the one the worker compares them with.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from channels.sms_inbox import KeptMessage

from ..settings import utc_now
from .models import SmsInboxRow
from .outbox_seal import OutboxSeal, SealBroken

__all__ = ["SqlInbox"]


def _aware(value: datetime) -> datetime:
    # SQLite gives back naive datetimes; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class SqlInbox:
    def __init__(self, sessions: sessionmaker[Session], seal: OutboxSeal,
                 clock: Callable[[], datetime] = utc_now, lease: timedelta = timedelta(seconds=60)) -> None:
        self._sessions, self._seal, self._clock, self._lease = sessions, seal, clock, lease

    def keep(self, *, message_id: str, sender: str, short_code: str, text: str, channel: str = "sms",
             provider: str = "africastalking") -> bool:
        with self._sessions() as db:
            if db.scalars(select(SmsInboxRow.id).where(SmsInboxRow.message_id == message_id)).first():
                return False
            db.add(SmsInboxRow(message_id=message_id, msisdn=sender, short_code=short_code, channel=channel,
                               provider=provider,
                               sealed=self._seal.seal_text(text), status="pending", attempts=0,
                               received_at=self._clock()))
            try:
                db.commit()
            except IntegrityError:   # the same message kept meanwhile by another process
                db.rollback()
                return False
            return True

    def due(self, now: datetime, limit: int = 50) -> list[KeptMessage]:
        older = aliased(SmsInboxRow)
        waiting_before = exists().where(and_(older.msisdn == SmsInboxRow.msisdn, older.channel == SmsInboxRow.channel,
                                             older.id < SmsInboxRow.id,
                                             older.status == "pending", older.next_attempt_at > now))
        with self._sessions.begin() as db:
            rows = db.scalars(select(SmsInboxRow).where(
                SmsInboxRow.status == "pending",
                SmsInboxRow.next_attempt_at.is_(None) | (SmsInboxRow.next_attempt_at <= now),
                ~waiting_before).order_by(SmsInboxRow.id).limit(limit).with_for_update(skip_locked=True)).all()
            claimed = []
            for row in rows:
                row.attempts = (row.attempts or 0) + 1
                row.next_attempt_at = now + self._lease
                claimed.append(KeptMessage(row.message_id, row.msisdn, row.short_code, self._opened(row.sealed),
                                           _aware(row.received_at), row.attempts, row.channel, row.provider))
            return claimed

    def postpone(self, message_id: str, until: datetime) -> None:
        with self._sessions.begin() as db:
            db.execute(update(SmsInboxRow).where(SmsInboxRow.message_id == message_id)
                       .values(next_attempt_at=until))

    def settle(self, message_id: str, outcome: str, now: datetime) -> None:
        with self._sessions.begin() as db:
            db.execute(update(SmsInboxRow).where(SmsInboxRow.message_id == message_id)
                       .values(status=outcome, settled_at=now, next_attempt_at=None, sealed=None))

    def _opened(self, sealed: str | None) -> str | None:
        if sealed is None:
            return None
        try:
            return self._seal.open_text(sealed)
        except SealBroken:
            return None   # another key: the worker apologises rather than run a message it cannot read
