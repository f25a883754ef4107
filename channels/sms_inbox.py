"""Incoming messages (SMS, WhatsApp) the engine could not run when they arrived, kept and run later by the
worker: none is lost.

When the session store is unreachable, or the customer's conversation is busy with another message past
the lock wait, the engine does not run the hop (its reply is ``transient``). Whether Africa's Talking posts
an incoming message again after a 5xx is not documented (README, "No SMS reply is lost"), Twilio does not
post a WhatsApp message again unless its webhook URL asks for it, and Meta's redeliveries back off for hours:
so no callback counts on the provider. The message is kept (``Inbox.keep``: once per provider message id,
its text sealed, in the product's database, with its channel and provider) and the callback answers ``200``
(Twilio: an empty TwiML); only a message that cannot even be kept (the database down too) is answered as
the channel answers a failure (SMS, Meta: ``503``).

The worker runs what was kept (``InboxDrain.run_once``), oldest first and each sender's messages on a channel
in the order they came: the hop as the callback would have run it (``KeptChannel.turn_of``: the channel's
adapter reads it again), its reply handed to the outbox (``KeptRoute.replies``: an ``sms_reply`` to the number
that wrote, a ``whatsapp_reply`` to its WhatsApp, laid out by the same adapter as its callback's answer:
``KeptChannel.reply_messages``; one per message id). The reply (and an apology) names the provider the message came
through and our number it was written to (``KeptMessage.short_code``: Twilio's ``To``, Meta's phone number id), so
that it goes back the way the customer wrote, never from another provider's number. A message still not runnable
waits for a later pass (backing off), and so do that sender's later messages on that channel. A message that waited
longer than a reply may (``stale_after``: the outbox's rule for its reply kind, 30 minutes) is not run, since
what it asked then (a balance, a payment) is not what the customer wants now: it is answered with a short
apology asking to send it again (``LateApology``: ``sms_reply_late``, ``whatsapp_reply_late``).

While a sender has a message kept and not settled on a channel, their newer messages there (and the
provider's reposts of a kept one) are kept behind it, not run by the callback (``waits_behind``, asked before
the engine): run at once, they would be answered before what the customer wrote first. ``Inbox.holds`` answers
without a SQL query while nothing is kept (a mark the worker leaves after a pass, ``Inbox.survey``; voided by
keeping a message) and asks the database otherwise: a message kept while Redis was unreachable cannot void the
mark, so the worker's next pass deletes it and it lapses within seconds anyway, and the process that kept it
asks the database for that sender until none of theirs is pending. Left: a newer message reaching *another*
process between the store coming back and the worker's next pass (a second or so) while an older mark still
stands; and a reply the drain queued and the outbox has not sent yet when the sender's next message, run at
once, is answered (the worker sends it in the same pass).

The same message id is answered once. Posted again while it is kept, nothing more is kept and nothing runs. A
message the engine runs twice (a pass that failed after the engine ran it) gets the engine's replay record:
the drain queues that reply, and the outbox keeps one row per message id, so a reply queued by an earlier pass
is not queued again. The answer ledger tells the drain whether a callback ran it instead (only when the inbox
could not be read, the database down, or in the gap above): a callback that answered it marks it answered
(``KeptChannel.answered_elsewhere``: settled with nothing more), one whose SMS reply is owed races the provider's
retry for a claim (``sms_handover``). The drain's own run marker (``LEDGER``) only names the settled status. Once
the reply is queued, the drain marks the message answered for the channel's callback (``KeptChannel.answered_later``:
the provider posting it again is answered with nothing) and settles the message only once that mark reads back:
settled without it, a repost would be run by the callback again (a second reply, a second step if the customer
wrote since). Until then the message is ``replied`` (``Inbox.replied``): it holds the sender's newer messages as
a pending one does, a repost waits behind it, and later passes only write the mark (no second run, no apology).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from engine import Engine, Reply, Turn
from engine.entry import find_start
from engine.masking import mask

from .adapter import BadRequest
from .answer_ledger import AnswerLedger
from .reply_secrets import shows_secret
from .sms_handover import ReplyHandOver, ReplyOutbox

__all__ = ["DrainPass", "Inbox", "InboxDrain", "KeptChannel", "KeptMessage", "KeptRoute", "LateApology",
           "keep_for_worker", "waits_behind"]

log = logging.getLogger("channels.inbox")

# The ledger's record of a kept message that the drain ran (apart from the callback's owed replies).
LEDGER: Final = "sms_inbox"
# The longest number written to that the inbox keeps (``sms_inbox.short_code``, 64 since v1_wa3: Meta's phone
# number ids run past 20 digits, and Meta's webhook takes up to 32 here).
KEPT_NUMBER_CHARS: Final = 64
_LONGEST_WAIT: Final = timedelta(seconds=30)


def _backoff(message: KeptMessage) -> timedelta:
    """2, 4, 8 ... seconds, at most 30: a store down for an hour is not asked every second."""
    return min(timedelta(seconds=2 ** min(message.attempts, 5)), _LONGEST_WAIT)


@dataclass(frozen=True, slots=True)
class KeptMessage:
    """An incoming message as the provider posted it (``text`` as written, ``None`` when its seal cannot be
    opened any more), when it was kept (the product's clock), how many passes took it so far, which
    channel and provider carried it (``sender``: the customer's E.164 number; ``short_code``: ours it was written
    to, an SMS short code, our WhatsApp number at Twilio or our phone number id at Meta; empty when unknown), and
    whether its reply is queued already (``replied``: only its answered mark is left to write)."""

    message_id: str
    sender: str
    short_code: str
    text: str | None
    received_at: datetime
    attempts: int = 1
    channel: str = "sms"
    provider: str = "africastalking"
    replied: bool = False


class Inbox(Protocol):
    def keep(self, *, message_id: str, sender: str, short_code: str, text: str, channel: str = "sms",
             provider: str = "africastalking") -> bool:
        """Keep a message for the worker; ``False`` when this message id is kept already. Raises when it
        cannot be kept (the database unreachable)."""

    def due(self, now: datetime, limit: int = 50) -> list[KeptMessage]:
        """Pending messages to run now, oldest first, none behind an older one of its sender (on its channel)
        that waits; held for this worker for a while (another worker does not take them meanwhile)."""

    def postpone(self, message_id: str, until: datetime) -> None:
        """Not runnable now: due again at ``until``."""

    def settle(self, message_id: str, outcome: str, now: datetime) -> None:
        """Done (``answered``, ``late``, ``answered_before``): never run again; its text erased."""

    def replied(self, message_id: str, until: datetime) -> None:
        """Its reply queued, its answered mark not written yet: due again at ``until`` to write it (never run
        again, never apologised for; its text erased), the sender's newer messages still behind it."""

    def holds(self, channel: str, sender: str) -> bool:
        """Whether a message of ``sender`` on ``channel`` is kept and not settled (a newer one waits behind it);
        cheap when nothing is kept. Raises nothing: ``False`` when it cannot be known (the database down)."""

    def survey(self) -> bool:
        """The worker's look after a pass: whether anything is still pending (when nothing is, ``holds`` answers
        without asking the database until a message is kept again)."""


class LateApology(Protocol):
    def queue_apology(self, to: str, *, language: str, message_id: str, received_at: datetime, provider: str = "",
                      from_number: str = "") -> bool:
        """Queue the apology for a message answered too late to be run; ``False`` when queued already. ``provider``
        and ``from_number``: where the message came in, where the apology goes back from."""


class KeptChannel(Protocol):
    """What the drain needs of the adapter whose callback kept a message."""

    @property
    def channel(self) -> str:
        """The channel's name (``sms``, ``whatsapp``): its keywords, its screens."""

    def turn_of(self, message: KeptMessage) -> Turn:
        """The turn of a kept message, read as the callback read it; ``BadRequest`` when it cannot be any more."""

    def reply_text(self, reply: Reply) -> str:
        """The reply as text (no wire format: no TwiML, no buttons): what SMS sends."""

    def reply_messages(self, engine: Engine, reply: Reply) -> list[Any]:
        """The reply laid out as the channel's callback would have answered it (the same renderer): Twilio's
        message bodies, Meta's Graph messages; empty for a channel whose reply is its text (SMS)."""

    def answered_elsewhere(self, message_id: str) -> bool:
        """Whether the channel's callback answered this message itself (the provider posted it again once the
        store was back)."""

    def answered_later(self, message_id: str) -> None:
        """The drain answered this message through the outbox: the provider posting it again gets nothing more."""


@dataclass(frozen=True, slots=True)
class KeptRoute:
    """How one channel's kept messages are run and answered: read by ``adapter``, the reply queued in
    ``replies`` (or ``apology`` when it waited more than ``stale_after``)."""

    adapter: KeptChannel
    replies: ReplyOutbox
    apology: LateApology
    stale_after: timedelta


def waits_behind(inbox: Inbox | None, turn: Turn) -> bool:
    """Whether the message of ``turn`` must wait behind a kept message of its sender on its channel (run now, it
    would be answered before them): the callback then keeps it too (``keep_for_worker``), without running it."""
    if inbox is None:
        return False
    if not inbox.holds(turn.channel, turn.customer or turn.address):
        return False
    log.info("%s message from %s waits behind the sender's kept messages", turn.channel, mask(turn.customer or ""))
    return True


def keep_for_worker(inbox: Inbox | None, turn: Turn, *, text: str, provider: str, short_code: str = "") -> bool:
    """The message of ``turn``, which the engine could not run now, kept for the worker (``text`` as the
    channel's ``turn_of`` reads it back); ``False`` when it cannot be (no inbox, the database down too)."""
    if inbox is None:
        log.warning("%s message from %s not run now and no inbox to keep it", turn.channel,
                    mask(turn.customer or ""))
        return False
    if len(short_code) > KEPT_NUMBER_CHARS:
        # Longer than the inbox's column (no phone number id or short code is): the reply goes from the number the
        # provider's settings name instead.
        log.warning("%s message from %s kept without the number it was written to (%d characters)", turn.channel,
                    mask(turn.customer or ""), len(short_code))
        short_code = ""
    try:
        kept = inbox.keep(message_id=turn.hop_id, sender=turn.customer or turn.address, short_code=short_code,
                          text=text, channel=turn.channel, provider=provider)
    except Exception as exc:  # noqa: BLE001 - the database down too: nothing else can keep it
        log.error("%s message from %s neither run nor kept (%s)", turn.channel, mask(turn.customer or ""),
                  type(exc).__name__)
        return False
    log.warning("%s message from %s not run now: kept for the worker%s", turn.channel, mask(turn.customer or ""),
                "" if kept else " (already kept)")
    return True


@dataclass(frozen=True, slots=True)
class DrainPass:
    answered: int = 0          # run, the reply queued
    late: int = 0              # too old to run: the apology queued
    waiting: int = 0           # not runnable yet (the store still down, the conversation busy)
    answered_before: int = 0   # the callback ran it meanwhile (the provider posted it again)


class InboxDrain:
    """The worker's side of the inbox: each kept message run through ``engine`` as the route of its channel and
    provider (``routes``, keyed by ``(channel, provider)``) says."""

    def __init__(self, engine: Engine, routes: Mapping[tuple[str, str], KeptRoute], inbox: Inbox,
                 ledger: AnswerLedger, clock: Callable[[], datetime],
                 preferred_language: Callable[[str], str | None] | None = None) -> None:
        self.engine, self.routes, self.inbox, self.ledger, self.clock = engine, dict(routes), inbox, ledger, clock
        self.preferred_language = preferred_language
        self._handover = ReplyHandOver(None, None, ledger)

    def run_once(self) -> DrainPass:
        now = self.clock()
        counts = {"answered": 0, "late": 0, "waiting": 0, "answered_before": 0}
        # Senders (on a channel) with a message that could not run: their later ones wait behind it.
        held: set[tuple[str, str]] = set()
        for message in self.inbox.due(now):
            if (message.channel, message.sender) in held:
                self.inbox.postpone(message.message_id, now)
                counts["waiting"] += 1
                continue
            outcome = self._run(message, now)
            counts[outcome] += 1
            if outcome == "waiting":
                held.add((message.channel, message.sender))
        self.inbox.survey()
        if any(counts.values()):
            log.info("kept incoming messages: %s", {k: n for k, n in counts.items() if n})
        return DrainPass(**counts)

    def _run(self, message: KeptMessage, now: datetime) -> str:
        route = self.routes.get((message.channel, message.provider))
        if route is None:
            # A provider this worker does not wire (another version kept it): it waits for one that does.
            log.error("kept %s message from %s: no route for provider %s", message.channel, mask(message.sender),
                      message.provider)
            self.inbox.postpone(message.message_id, now + _LONGEST_WAIT)
            return "waiting"
        if message.replied:
            return self._answered(route, message, now)
        turn = self._turn(route, message)
        if turn is None or now - message.received_at >= route.stale_after:
            # Too old to run (or unreadable): what it asked is not what the customer wants now.
            route.apology.queue_apology(message.sender, language=self._language(route, message, turn),
                                        message_id=message.message_id, received_at=message.received_at,
                                        provider=message.provider, from_number=message.short_code)
            self.inbox.settle(message.message_id, "late", now)
            log.warning("kept %s message from %s answered with an apology: waited %d s", message.channel,
                        mask(message.sender), (now - message.received_at).total_seconds())
            return "late"
        ran_here = self.ledger.recall(LEDGER, message.message_id) is not None
        if not ran_here and route.adapter.answered_elsewhere(message.message_id):
            self.inbox.settle(message.message_id, "answered_before", now)
            log.info("kept %s message from %s was answered by the provider's repost: nothing more", message.channel,
                     mask(message.sender))
            return "answered_before"
        reply = self.engine.handle(turn)
        if reply.transient:
            self.inbox.postpone(message.message_id, now + _backoff(message))
            return "waiting"
        owed = False
        if not reply.replayed:
            # Only names the run this drain's when its status is written (``answered`` rather than
            # ``answered_before``): a replay without it is answered as this drain's all the same (below).
            self.ledger.keep(LEDGER, message.message_id, {"ran": True})
        elif not ran_here and self._handover.owes(message.message_id):
            # A callback ran it (the provider posted it while the inbox could not be read) and owes its reply: of
            # the drain and the provider's retry, the one that claims it hands it over.
            owed = self._handover.take_owed(message.message_id)
            if not owed:
                self.inbox.settle(message.message_id, "answered_before", now)
                log.info("kept %s message from %s was answered by the provider's repost: nothing more",
                         message.channel, mask(message.sender))
                return "answered_before"
        # Otherwise a replay is this drain's own run, on a pass that failed before the reply was queued or its
        # message settled (a callback does not run a message kept and pending: it waits behind it, and one that
        # answered is marked, above). Queued again, it is not sent twice: the outbox keeps one row per message id.
        language = reply.screen.language if reply.screen else ""
        route.replies.queue_reply(message.sender, route.adapter.reply_text(reply), language=language,
                                  message_id=message.message_id,
                                  messages=route.adapter.reply_messages(self.engine, reply), provider=message.provider,
                                  from_number=message.short_code,
                                  plain=not shows_secret(self.engine.flows.menus, reply.screen))
        if owed:
            self._handover.settle(message.message_id)
        return self._answered(route, message, now)

    def _answered(self, route: KeptRoute, message: KeptMessage, now: datetime) -> str:
        """Its reply queued: the mark that answers the provider's repost with nothing written, then settled."""
        route.adapter.answered_later(message.message_id)
        if not route.adapter.answered_elsewhere(message.message_id):
            # The mark could not be written (the ledger unreachable). Settled without it, a repost would be run
            # again by the callback (a second reply, a second step if the customer wrote since). Left holding
            # (``replied``): a repost waits behind it, and a later pass writes the mark, nothing else.
            self.inbox.replied(message.message_id, now + _backoff(message))
            log.warning("kept %s message from %s answered, its answered mark not written: settled on a later pass",
                        message.channel, mask(message.sender))
            return "waiting"
        self.inbox.settle(message.message_id, "answered", now)
        return "answered"

    @staticmethod
    def _turn(route: KeptRoute, message: KeptMessage) -> Turn | None:
        """The message's turn; ``None`` when it cannot be read any more (its seal, or a setting changed since)."""
        if message.text is None:
            return None
        try:
            return route.adapter.turn_of(message)
        except BadRequest as exc:
            log.error("kept %s message from %s cannot be read again: %s", message.channel, mask(message.sender),
                      exc)
            return None

    def _language(self, route: KeptRoute, message: KeptMessage, turn: Turn | None) -> str:
        """The language of the apology: the keyword's the customer wrote, else the one they chose, else the
        product's default."""
        menus = self.engine.flows.menus
        written = find_start(menus, route.adapter.channel, message.short_code or "*",
                             turn.input if turn is not None else None).language
        if written in menus.languages:
            return str(written)
        chosen = self.preferred_language(message.sender) if self.preferred_language is not None else None
        return self.engine.language_for(chosen)
