"""The inbox on SQL (``channels.sms_inbox.Inbox``): incoming messages (SMS, WhatsApp) the engine could not run
at once, each with its channel and provider.

One row per provider message id (unique), so the provider posting a message again keeps nothing more. What
the customer wrote is sealed like the outbox's secrets (``OutboxSeal``: a message may be ``OUI 1234``, a
PIN) and erased once the message is settled. Rows are claimed as the outbox's are: held for a lease, with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so two workers never run the same message; a message behind an
older one of its sender on its channel that waits is not claimed (a sender's messages run in the order they
came; SMS and WhatsApp are two conversations). Every
stamp is on the product's clock (``Settings.clock``), the one the worker compares them with.

``holds`` tells a callback whether its sender has a kept message pending on the channel (a newer message then
waits behind it) without a SQL query when nothing is kept: the worker's mark in Redis (``inbox_mark``) says the
inbox was found empty since the last message kept. SQL is asked when the mark does not hold (something kept,
Redis unsure) and for a sender this process itself kept a message of (remembered here until SQL finds none of
theirs pending: the mark cannot be cleared while Redis is unreachable, the very time messages are kept).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from channels.sms_inbox import KeptMessage
from engine.masking import mask

from ..settings import utc_now
from .inbox_mark import InboxMark
from .models import SmsInboxRow
from .outbox_seal import OutboxSeal, SealBroken

__all__ = ["SqlInbox"]

log = logging.getLogger("app.inbox")

# A message not settled yet: to run (``pending``), or its reply queued and its answered mark to write (``replied``).
_HOLDING = ("pending", "replied")
_REMEMBERED = 10_000     # senders this process remembers keeping a message of


def _aware(value: datetime) -> datetime:
    # SQLite gives back naive datetimes; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class SqlInbox:
    def __init__(self, sessions: sessionmaker[Session], seal: OutboxSeal,
                 clock: Callable[[], datetime] = utc_now, lease: timedelta = timedelta(seconds=60),
                 mark: InboxMark | None = None) -> None:
        self._sessions, self._seal, self._clock, self._lease = sessions, seal, clock, lease
        self._mark = mark
        # (channel, sender) of the messages this process kept, each with how many: asked of SQL whatever the
        # mark says (forgotten only if none was kept while SQL was asked).
        self._kept_here: dict[tuple[str, str], int] = {}
        self._kept_lock = threading.Lock()

    def keep(self, *, message_id: str, sender: str, short_code: str, text: str, channel: str = "sms",
             provider: str = "africastalking") -> bool:
        with self._kept_lock:
            self._kept_here[(channel, sender)] = self._kept_here.pop((channel, sender), 0) + 1
            while len(self._kept_here) > _REMEMBERED:
                # The oldest go first (senders who never wrote again): the mark and SQL still speak for them.
                del self._kept_here[next(iter(self._kept_here))]
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
        if self._mark is not None:
            self._mark.kept()     # after the commit: a worker reading the count before it finds the row
        return True

    def holds(self, channel: str, sender: str) -> bool:
        with self._kept_lock:
            kept_here = self._kept_here.get((channel, sender))
        if kept_here is None and self._mark is not None and self._mark.known_empty():
            return False
        try:
            with self._sessions() as db:
                pending = db.scalars(select(SmsInboxRow.id).where(
                    SmsInboxRow.msisdn == sender, SmsInboxRow.channel == channel,
                    SmsInboxRow.status.in_(_HOLDING)).limit(1)).first() is not None
        except SQLAlchemyError as exc:
            # Nothing can be kept either: the message runs now, as it would have without an inbox.
            log.error("inbox unreadable, %s message from %s not checked for kept ones: %s", channel, mask(sender),
                      type(exc).__name__)
            return False
        if not pending and kept_here is not None:
            with self._kept_lock:
                if self._kept_here.get((channel, sender)) == kept_here:
                    del self._kept_here[(channel, sender)]
        return pending

    def survey(self) -> bool:
        count = self._mark.count() if self._mark is not None else None
        with self._sessions() as db:
            pending = db.scalars(select(SmsInboxRow.id).where(SmsInboxRow.status.in_(_HOLDING))
                                 .limit(1)).first() is not None
        if self._mark is not None:
            if pending:
                self._mark.unmark()
            elif count is not None:
                self._mark.mark_empty(count)
        return pending

    def due(self, now: datetime, limit: int = 50) -> list[KeptMessage]:
        older = aliased(SmsInboxRow)
        waiting_before = exists().where(and_(older.msisdn == SmsInboxRow.msisdn, older.channel == SmsInboxRow.channel,
                                             older.id < SmsInboxRow.id,
                                             older.status.in_(_HOLDING), older.next_attempt_at > now))
        with self._sessions.begin() as db:
            rows = db.scalars(select(SmsInboxRow).where(
                SmsInboxRow.status.in_(_HOLDING),
                SmsInboxRow.next_attempt_at.is_(None) | (SmsInboxRow.next_attempt_at <= now),
                ~waiting_before).order_by(SmsInboxRow.id).limit(limit).with_for_update(skip_locked=True)).all()
            claimed = []
            for row in rows:
                row.attempts = (row.attempts or 0) + 1
                row.next_attempt_at = now + self._lease
                claimed.append(KeptMessage(row.message_id, row.msisdn, row.short_code, self._opened(row.sealed),
                                           _aware(row.received_at), row.attempts, row.channel, row.provider,
                                           row.status == "replied"))
            return claimed

    def postpone(self, message_id: str, until: datetime) -> None:
        with self._sessions.begin() as db:
            db.execute(update(SmsInboxRow).where(SmsInboxRow.message_id == message_id)
                       .values(next_attempt_at=until))

    def replied(self, message_id: str, until: datetime) -> None:
        with self._sessions.begin() as db:
            db.execute(update(SmsInboxRow).where(SmsInboxRow.message_id == message_id)
                       .values(status="replied", next_attempt_at=until, sealed=None))

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
