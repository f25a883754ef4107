"""Whether the product's database shows an incoming chat message answered (``channels.answer_ledger.DurableAnswers``).

The answer ledger in Redis is the fast path; when Redis restarted empty it forgot, and the rows the product
already keeps are the durable record: the message's claim marked answered (``answered_at``), the reply queued in
the outbox (one row per incoming message id, its dedupe key naming it: ``sms_reply:<id>``, ``whatsapp_reply:<id>``),
or the message settled in the inbox (``answered``, ``answered_before``; ``answered_at_once`` rows written before
v1_answered1 were folded into the claims).

Before a message runs it is claimed (``claim``: a ``message_claims`` row under its id, the primary key), so a copy
delivered in the moment between the answer and its record finds it taken. Once the answer has gone, the same row
is marked answered (``mark_answered``: an update of the row the claim wrote, so a message answered at once costs
one row, written then updated, and no second table). Two statements, not one: the claim must be durable before
the message runs (a copy during the run must find it, whatever happens to Redis meanwhile), and only a mark written
after the answer tells an answered message from a run that ended without answering (a process that died, a reply
owed while the database was down): the latter must run again, the former never.

A copy finding the claim of a message kept for the worker (``sms_inbox``, not settled yet) is ``TAKEN`` too: kept
once, the worker answers it. A claim found unanswered otherwise is ``BUSY`` while a run could still be going (younger than ``stale_seconds``: longer than
any hop takes to run and send), and taken over once older (its message showing no answer anywhere).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from channels.answer_ledger import Claim

from ..settings import utc_now
from .models import MessageClaimRow, OutboxEventRow, SmsInboxRow

__all__ = ["STALE_CLAIM_SECONDS", "SqlAnswers", "claim_key"]

# The inbox's settled statuses; ``answered_at_once`` only on a database not migrated past v1_answered1 yet.
_SETTLED = ("answered", "answered_before", "answered_at_once")
# A hop runs within its deadline and the reply's send within its timeouts: a claim this old is a dead run's.
STALE_CLAIM_SECONDS: Final = 120
_KEY_CHARS: Final = 128


def claim_key(message_id: str) -> str:
    """The message id as the claims' primary key holds it: as it is up to 128 characters, else its head and a digest
    (two long ids sharing their first 128 characters are two messages)."""
    if len(message_id) <= _KEY_CHARS:
        return message_id
    return message_id[:_KEY_CHARS - 41] + "#" + hashlib.sha256(message_id.encode()).hexdigest()[:40]


class SqlAnswers:
    """``reply_keys(message_id)``: the outbox dedupe keys a reply to that message is queued under."""

    def __init__(self, sessions: sessionmaker[Session], reply_keys: Callable[[str], tuple[str, ...]],
                 clock: Callable[[], datetime] = utc_now, stale_seconds: int = STALE_CLAIM_SECONDS) -> None:
        self._sessions, self._reply_keys, self._clock = sessions, reply_keys, clock
        self._stale = timedelta(seconds=stale_seconds)

    def claim(self, message_id: str, *, channel: str) -> Claim:
        now, key = self._clock(), claim_key(message_id)
        with self._sessions() as db:
            db.add(MessageClaimRow(message_id=key, channel=channel, claimed_at=now))
            try:
                db.commit()
                return Claim.OURS
            except IntegrityError:   # claimed already: by a delivery running it now, one that died, or answered
                db.rollback()
        if self.answered(message_id, kept=True):
            return Claim.TAKEN
        with self._sessions() as db:
            # Conditional, so that of two deliveries taking over the same dead claim one only wins.
            taken = db.execute(update(MessageClaimRow).where(
                MessageClaimRow.message_id == key, MessageClaimRow.answered_at.is_(None),
                MessageClaimRow.claimed_at < now - self._stale,
            ).values(claimed_at=now))
            db.commit()
            return Claim.OURS if getattr(taken, "rowcount", 0) == 1 else Claim.BUSY

    def release(self, message_id: str) -> None:
        with self._sessions() as db:
            db.execute(delete(MessageClaimRow).where(MessageClaimRow.message_id == claim_key(message_id),
                                                     MessageClaimRow.answered_at.is_(None)))
            db.commit()

    def mark_answered(self, message_id: str, *, channel: str) -> None:
        now, key = self._clock(), claim_key(message_id)
        with self._sessions() as db:
            marked = db.execute(update(MessageClaimRow).where(MessageClaimRow.message_id == key)
                                .values(answered_at=now))
            if getattr(marked, "rowcount", 0) == 0:
                # Run without a claim (the database refused it while the answer ledger vouched): the row now.
                db.add(MessageClaimRow(message_id=key, channel=channel, claimed_at=now, answered_at=now))
            try:
                db.commit()
            except IntegrityError:   # claimed meanwhile by a copy: the answer stands all the same
                db.rollback()
                db.execute(update(MessageClaimRow).where(MessageClaimRow.message_id == key).values(answered_at=now))
                db.commit()

    def answered(self, message_id: str, *, kept: bool = False) -> bool:
        """``DurableAnswers.answered``; ``kept``: a message kept for the worker and not settled yet counts too (a
        copy of it is handled: the worker answers the one kept)."""
        with self._sessions() as db:
            if db.scalars(select(MessageClaimRow.answered_at).where(
                    MessageClaimRow.message_id == claim_key(message_id))).first() is not None:
                return True
            inbox = select(SmsInboxRow.id).where(SmsInboxRow.message_id == message_id)
            if db.scalars(inbox if kept else inbox.where(SmsInboxRow.status.in_(_SETTLED))).first() is not None:
                return True
            return db.scalars(select(OutboxEventRow.id).where(
                OutboxEventRow.dedupe_key.in_(self._reply_keys(message_id)))).first() is not None
