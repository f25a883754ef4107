"""Handing an SMS reply over: sent now, else queued in the outbox, else owed to the provider's retry.

The reply to an incoming SMS goes out through the SMS API inside the callback (the fast path: no SQL,
one provider call). When the provider cannot take it now (down, a timeout, a 5xx, a refusal) or no
sender is configured, the reply is handed to the notification outbox (``ReplyOutbox``): the worker
sends it with the outbox's retries and backoff, its delivery status is kept like any other message's,
and its text is sealed there (a reply can show a prepaid token). Queued once per incoming message id:
a provider retry of the same message never queues it twice.

If the outbox cannot take it either (the database down), the reply is *owed*: marked in the answer
ledger under the incoming message id, and the callback answers ``503`` so the provider sends the
message again. That retry is a replay for the engine (nothing runs twice); finding the mark, the
reply is handed over again, by one retry only: several arriving at the same moment race for a claim in
the ledger (Redis ``SET NX``), and the others answer ``200`` with nothing sent. A replay without the mark
was handed over the first time: nothing is sent.

Every reply handed over is also marked answered under its message id (``answered``): the engine's replay
record only knows a conversation's last hop, so a message the provider posts again after the customer has
written since would run again as a new input (a second balance, a second payment asked for). The mark tells
the callback (and the worker's inbox) that this message id was answered: it is not run again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from engine.masking import mask

from .answer_ledger import AnswerLedger, DurableAnswers, answered_before

__all__ = ["ReplyHandOver", "ReplyOutbox", "ReplySender"]

log = logging.getLogger("channels.sms")

LEDGER: Final = "sms"


class ReplySender(Protocol):
    def send(self, to: str, text: str) -> object:
        """Send one SMS (the SDK splits it into parts); raises when the provider refuses or is down."""


class ReplyOutbox(Protocol):
    def queue_reply(self, to: str, text: str, *, language: str, message_id: str, messages: Sequence[Any] = (),
                    provider: str = "", from_number: str = "", plain: bool = False) -> bool:
        """Queue the reply to incoming message ``message_id`` for the worker; ``False`` when it was queued
        already. ``messages``: the reply as ``provider``'s adapter lays it out (a WhatsApp reply's bodies or
        Graph messages), sent instead of ``text`` by that provider; ``provider`` and ``from_number``: where the
        message came in (our number it was written to), where a WhatsApp reply goes back from; ``plain``: it
        shows no code or token (``reply_secrets``), so a late failure on WhatsApp may still bring it by SMS after
        a code's bound. Raises when it cannot be kept (the database unreachable)."""


@dataclass(frozen=True, slots=True)
class ReplyHandOver:
    """Where a reply goes: ``sender`` now, else ``outbox``, else owed (``ledger``) to the provider's retry."""

    sender: ReplySender | None
    outbox: ReplyOutbox | None
    ledger: AnswerLedger

    def hand_over(self, to: str, text: str, *, language: str, message_id: str) -> bool:
        """Send or queue the reply; ``False`` when it is owed (the provider must send the message again)."""
        if self.sender is not None:
            try:
                self.sender.send(to, text)
                return True
            except Exception as exc:  # noqa: BLE001 - the provider's typed errors, a timeout: the outbox takes it
                log.warning("SMS reply to %s not sent now (%s): handed to the outbox", mask(to),
                            type(exc).__name__)
        else:
            log.warning("no SMS sender configured (AT_API_KEY): reply to %s waits in the outbox", mask(to))
        if self.outbox is None:
            log.error("SMS reply to %s lost: no sender and no outbox", mask(to))
            return True
        try:
            self.outbox.queue_reply(to, text, language=language, message_id=message_id)
        except Exception as exc:  # noqa: BLE001 - the database down: owed, the provider's retry brings it back
            log.error("SMS reply to %s neither sent nor queued (%s): asking the provider to send the message "
                      "again", mask(to), type(exc).__name__)
            # A new round each time it stays owed: the next retry's claim is a new one.
            earlier = self.ledger.recall(LEDGER, message_id) or {}
            done = earlier.get("round")
            self.ledger.keep(LEDGER, message_id, {"owed": True, "round": done + 1 if isinstance(done, int) else 0})
            return False
        return True

    def owes(self, message_id: str) -> bool:
        """Whether the reply to this message is owed (handed over by no one yet)."""
        record = self.ledger.recall(LEDGER, message_id)
        return bool(record and record.get("owed"))

    def take_owed(self, message_id: str) -> bool:
        """Whether the reply to this message is owed and this caller is the one to hand it over now: of
        several retries arriving together, one only (a claim in the ledger per round)."""
        record = self.ledger.recall(LEDGER, message_id)
        if not (record and record.get("owed")):
            return False
        return self.ledger.claim(LEDGER, f"{message_id}:owed:{record.get('round', 0)}")

    def settle(self, message_id: str) -> None:
        """The reply to this message was handed over (at last, if it was owed): it is answered."""
        self.ledger.keep(LEDGER, message_id, {"owed": False})

    def answered(self, message_id: str, answers: DurableAnswers | None = None) -> bool:
        """Whether this message id was answered already (its reply handed over, not owed); with no record of it,
        what ``answers`` (the database) says once the ledger forgot (``answered_before``)."""
        record = self.ledger.recall(LEDGER, message_id)
        if record is None:
            return answered_before(self.ledger, answers, message_id)
        return record.get("owed") is False
