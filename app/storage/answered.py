"""Whether the product's database shows an incoming chat message answered (``channels.answer_ledger.DurableAnswers``).

The answer ledger in Redis is the fast path; when Redis restarted empty it forgot, and the rows the product
already keeps are the durable record: the reply queued in the outbox (one row per incoming message id, its
dedupe key naming it: ``sms_reply:<id>``, ``whatsapp_reply:<id>``), or the message settled in the inbox
(``answered``, ``answered_before``). A reply a WhatsApp webhook gave at once (Twilio's TwiML, Meta's Graph
messages: no outbox row) leaves an inbox row of its own once it has gone, settled as ``answered_at_once``, with
no text: the kept messages' table is already the one place that knows each incoming message id answered, kept
30 days (``retention``), and a settled row holds no sender's newer messages back.

Before a message runs it is claimed (``claim``: a ``message_claims`` row under its id, the primary key), so a copy
delivered in the moment between the answer and its row finds it taken. A claim older than ``stale_seconds``
(longer than any hop takes to run and send) whose message shows no answer was left by a run that died: taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..settings import utc_now
from .models import MessageClaimRow, OutboxEventRow, SmsInboxRow

__all__ = ["AT_ONCE", "STALE_CLAIM_SECONDS", "SqlAnswers"]

# The inbox status of a message its webhook answered at once (never kept for the worker).
AT_ONCE = "answered_at_once"
_SETTLED = ("answered", "answered_before", AT_ONCE)
# A hop runs within its deadline and the reply's send within its timeouts: a claim this old is a dead run's.
STALE_CLAIM_SECONDS: Final = 120


class SqlAnswers:
    """``reply_keys(message_id)``: the outbox dedupe keys a reply to that message is queued under."""

    def __init__(self, sessions: sessionmaker[Session], reply_keys: Callable[[str], tuple[str, ...]],
                 clock: Callable[[], datetime] = utc_now, stale_seconds: int = STALE_CLAIM_SECONDS) -> None:
        self._sessions, self._reply_keys, self._clock = sessions, reply_keys, clock
        self._stale = timedelta(seconds=stale_seconds)

    def claim(self, message_id: str, *, channel: str) -> bool:
        now, key = self._clock(), message_id[:128]
        with self._sessions() as db:
            db.add(MessageClaimRow(message_id=key, channel=channel, claimed_at=now))
            try:
                db.commit()
                return True
            except IntegrityError:   # claimed already: by a delivery running it now, or one that died
                db.rollback()
        if self.answered(message_id):
            return False
        with self._sessions() as db:
            # Conditional, so that of two deliveries taking over the same dead claim one only wins.
            taken = db.execute(update(MessageClaimRow).where(
                MessageClaimRow.message_id == key, MessageClaimRow.claimed_at < now - self._stale,
            ).values(claimed_at=now))
            db.commit()
            return bool(getattr(taken, "rowcount", 0) == 1)

    def release(self, message_id: str) -> None:
        with self._sessions() as db:
            db.execute(delete(MessageClaimRow).where(MessageClaimRow.message_id == message_id[:128]))
            db.commit()

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
