"""Whether the product's database shows an incoming chat message answered (``channels.answer_ledger.DurableAnswers``).

The answer ledger in Redis is the fast path; when Redis restarted empty it forgot, and the rows the product
already keeps are the durable record: the reply queued in the outbox (one row per incoming message id, its
dedupe key naming it: ``sms_reply:<id>``, ``whatsapp_reply:<id>``), or the kept message settled in the inbox
(``answered``, ``answered_before``). A reply sent at once through the provider (the common path, no SQL) leaves
no row: such a message, posted again after Redis forgot, is answered again (README, "WhatsApp").
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .models import OutboxEventRow, SmsInboxRow

__all__ = ["SqlAnswers"]

_SETTLED = ("answered", "answered_before")


class SqlAnswers:
    """``reply_keys(message_id)``: the outbox dedupe keys a reply to that message is queued under."""

    def __init__(self, sessions: sessionmaker[Session], reply_keys: Callable[[str], tuple[str, ...]]) -> None:
        self._sessions, self._reply_keys = sessions, reply_keys

    def answered(self, message_id: str) -> bool:
        with self._sessions() as db:
            if db.scalars(select(SmsInboxRow.id).where(SmsInboxRow.message_id == message_id,
                                                       SmsInboxRow.status.in_(_SETTLED))).first() is not None:
                return True
            return db.scalars(select(OutboxEventRow.id).where(
                OutboxEventRow.dedupe_key.in_(self._reply_keys(message_id)))).first() is not None
