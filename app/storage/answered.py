"""Whether the product's database shows an incoming chat message answered (``channels.answer_ledger.DurableAnswers``).

The answer ledger in Redis is the fast path; when Redis restarted empty it forgot, and the rows the product
already keeps are the durable record: the reply queued in the outbox (one row per incoming message id, its
dedupe key naming it: ``sms_reply:<id>``, ``whatsapp_reply:<id>``), or the message settled in the inbox
(``answered``, ``answered_before``). A reply a WhatsApp webhook gave at once (Twilio's TwiML, Meta's Graph
messages: no outbox row) leaves an inbox row of its own once it has gone, settled as ``answered_at_once``, with
no text: the kept messages' table is already the one place that knows each incoming message id answered, kept
30 days (``retention``), and a settled row holds no sender's newer messages back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..settings import utc_now
from .models import OutboxEventRow, SmsInboxRow

__all__ = ["AT_ONCE", "SqlAnswers"]

# The inbox status of a message its webhook answered at once (never kept for the worker).
AT_ONCE = "answered_at_once"
_SETTLED = ("answered", "answered_before", AT_ONCE)


class SqlAnswers:
    """``reply_keys(message_id)``: the outbox dedupe keys a reply to that message is queued under."""

    def __init__(self, sessions: sessionmaker[Session], reply_keys: Callable[[str], tuple[str, ...]],
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._sessions, self._reply_keys, self._clock = sessions, reply_keys, clock

    def answered(self, message_id: str) -> bool:
        with self._sessions() as db:
            if db.scalars(select(SmsInboxRow.id).where(SmsInboxRow.message_id == message_id,
                                                       SmsInboxRow.status.in_(_SETTLED))).first() is not None:
                return True
            return db.scalars(select(OutboxEventRow.id).where(
                OutboxEventRow.dedupe_key.in_(self._reply_keys(message_id)))).first() is not None

    def answered_at_once(self, message_id: str, *, msisdn: str, channel: str, provider: str, number: str = "") -> None:
        now = self._clock()
        with self._sessions() as db:
            db.add(SmsInboxRow(message_id=message_id[:128], msisdn=msisdn[:20], channel=channel, provider=provider,
                               short_code=number[:64], sealed=None, status=AT_ONCE, attempts=0, received_at=now,
                               settled_at=now))
            try:
                db.commit()
            except IntegrityError:   # recorded already (a redelivery answered again from the ledger), or kept
                db.rollback()
