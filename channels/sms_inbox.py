"""Incoming SMS the engine could not run when they arrived, kept and run later by the worker: none is lost.

When the session store is unreachable, or the customer's conversation is busy with another message past
the lock wait, the engine does not run the hop (its reply is ``transient``). Whether Africa's Talking posts
an incoming message again after a 5xx is not documented (README, "No SMS reply is lost"), so the callback
does not count on it: the message is kept (``Inbox.keep``: once per provider message id, its text sealed,
in the product's database) and the callback answers ``200``; only a message that cannot even be kept (the
database down too) is answered ``503``.

The worker runs what was kept (``InboxDrain.run_once``), oldest first and each sender's messages in the
order they came: the hop as the callback would have run it, its reply handed to the outbox as an
``sms_reply`` (one per message id, as for a reply the provider could not take at once). A message still
not runnable waits for a later pass (backing off), and so do that sender's later messages. A message that
waited longer than a reply may (``stale_after``: the outbox's rule for ``sms_reply``, 30 minutes) is not
run, since what it asked then (a balance, a payment) is not what the customer wants now: it is answered
with a short apology asking to send it again (``LateApology``, the ``sms_reply_late`` notification).

The same message id is handled once. Posted again while it is kept, nothing more is kept. Run twice (the
worker's pass failed after the engine ran it, or the provider posted it again and the callback ran it),
the engine's replay record answers; the answer ledger then tells who ran it: this drain (the reply is
queued, the outbox keeping one row per message id) or the callback (which answered it: nothing more).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

from engine import Engine, Turn
from engine.entry import find_start
from engine.masking import mask

from .adapter import BadRequest
from .answer_ledger import AnswerLedger
from .sms_handover import ReplyHandOver, ReplyOutbox

if TYPE_CHECKING:
    from .sms import SmsAdapter

__all__ = ["DrainPass", "Inbox", "InboxDrain", "KeptMessage", "LateApology"]

log = logging.getLogger("channels.sms")

# The ledger's record of a kept message that the drain ran (apart from the callback's owed replies).
LEDGER: Final = "sms_inbox"
_LONGEST_WAIT: Final = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class KeptMessage:
    """An incoming SMS as the provider posted it (``text`` as written, ``None`` when its seal cannot be
    opened any more), when it was kept (the product's clock) and how many passes took it so far."""

    message_id: str
    sender: str
    short_code: str
    text: str | None
    received_at: datetime
    attempts: int = 1


class Inbox(Protocol):
    def keep(self, *, message_id: str, sender: str, short_code: str, text: str) -> bool:
        """Keep a message for the worker; ``False`` when this message id is kept already. Raises when it
        cannot be kept (the database unreachable)."""

    def due(self, now: datetime, limit: int = 50) -> list[KeptMessage]:
        """Pending messages to run now, oldest first, none behind an older one of its sender that waits;
        held for this worker for a while (another worker does not take them meanwhile)."""

    def postpone(self, message_id: str, until: datetime) -> None:
        """Not runnable now: due again at ``until``."""

    def settle(self, message_id: str, outcome: str, now: datetime) -> None:
        """Done (``answered``, ``late``, ``answered_before``): never run again; its text erased."""


class LateApology(Protocol):
    def queue_apology(self, to: str, *, language: str, message_id: str, received_at: datetime) -> bool:
        """Queue the apology for a message answered too late to be run; ``False`` when queued already."""


@dataclass(frozen=True, slots=True)
class DrainPass:
    answered: int = 0          # run, the reply queued
    late: int = 0              # too old to run: the apology queued
    waiting: int = 0           # not runnable yet (the store still down, the conversation busy)
    answered_before: int = 0   # the callback ran it meanwhile (the provider posted it again)


class InboxDrain:
    """The worker's side of the inbox: each kept message run through ``engine`` as ``adapter`` would, its reply
    queued in ``replies`` (or ``apology`` when it waited more than ``stale_after``)."""

    def __init__(self, engine: Engine, adapter: SmsAdapter, inbox: Inbox, replies: ReplyOutbox,
                 apology: LateApology, ledger: AnswerLedger, stale_after: timedelta,
                 clock: Callable[[], datetime], preferred_language: Callable[[str], str | None] | None = None) -> None:
        self.engine, self.adapter, self.inbox, self.replies = engine, adapter, inbox, replies
        self.apology, self.ledger, self.stale_after, self.clock = apology, ledger, stale_after, clock
        self.preferred_language = preferred_language
        self._handover = ReplyHandOver(None, replies, ledger)

    def run_once(self) -> DrainPass:
        now = self.clock()
        counts = {"answered": 0, "late": 0, "waiting": 0, "answered_before": 0}
        held: set[str] = set()   # senders with a message that could not run: their later ones wait behind it
        for message in self.inbox.due(now):
            if message.sender in held:
                self.inbox.postpone(message.message_id, now)
                counts["waiting"] += 1
                continue
            outcome = self._run(message, now)
            counts[outcome] += 1
            if outcome == "waiting":
                held.add(message.sender)
        if any(counts.values()):
            log.info("kept incoming SMS: %s", {k: n for k, n in counts.items() if n})
        return DrainPass(**counts)

    def _run(self, message: KeptMessage, now: datetime) -> str:
        turn = self._turn(message)
        if turn is None or now - message.received_at >= self.stale_after:
            # Too old to run (or unreadable): what it asked is not what the customer wants now.
            self.apology.queue_apology(message.sender, language=self._language(message, turn),
                                       message_id=message.message_id, received_at=message.received_at)
            self.inbox.settle(message.message_id, "late", now)
            log.warning("kept sms from %s answered with an apology: waited %d s", mask(message.sender),
                        (now - message.received_at).total_seconds())
            return "late"
        reply = self.engine.handle(turn)
        if reply.transient:
            # Backing off: 2, 4, 8 ... seconds, at most 30 (a store down for an hour is not asked every second).
            wait = min(timedelta(seconds=2 ** min(message.attempts, 5)), _LONGEST_WAIT)
            self.inbox.postpone(message.message_id, now + wait)
            return "waiting"
        owed = False
        if reply.replayed:
            ran_here = self.ledger.recall(LEDGER, message.message_id) is not None
            owed = not ran_here and self._handover.take_owed(message.message_id)
            if not (ran_here or owed):
                self.inbox.settle(message.message_id, "answered_before", now)
                log.info("kept sms from %s was answered by the provider's repost: nothing more", mask(turn.address))
                return "answered_before"
        else:
            # Before its reply is queued: a pass failing after this point queues it on the next run (a replay).
            self.ledger.keep(LEDGER, message.message_id, {"ran": True})
        language = reply.screen.language if reply.screen else ""
        self.replies.queue_reply(turn.address, self.adapter.render(reply), language=language,
                                 message_id=message.message_id)
        if owed:
            self._handover.settle(message.message_id)
        self.inbox.settle(message.message_id, "answered", now)
        return "answered"

    def _turn(self, message: KeptMessage) -> Turn | None:
        """The message's turn; ``None`` when it cannot be read any more (its seal, or a setting changed since)."""
        if message.text is None:
            return None
        try:
            return self.adapter.turn_of(message)
        except BadRequest as exc:
            log.error("kept sms from %s cannot be read again: %s", mask(message.sender), exc)
            return None

    def _language(self, message: KeptMessage, turn: Turn | None) -> str:
        """The language of the apology: the keyword's the customer wrote, else the one they chose, else the
        product's default."""
        menus = self.engine.flows.menus
        written = find_start(menus, self.adapter.channel, message.short_code or "*",
                             turn.input if turn is not None else None).language
        if written in menus.languages:
            return str(written)
        chosen = self.preferred_language(message.sender) if self.preferred_language is not None else None
        return self.engine.language_for(chosen)
