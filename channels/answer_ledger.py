"""What a chat channel answered to each provider message id, so a redelivered message is answered
once: the same answer again, never a second step.

The engine already answers a retry of a session's *last* hop from its replay record; messaging
providers also redeliver late and out of order (Meta retries a webhook that was not answered
``200`` for days), when the session has moved on. The ledger keeps, per channel and message id,
what was answered (the TwiML, or the Graph API messages) and how much of it went out, for as
long as the provider may redeliver (``ttl_seconds``: WhatsApp's 24-hour customer-service window,
after which a free-form reply could not be sent anyway).

The ledger is a fast path, not the durable record: Redis may restart empty (and a process's own ledger starts
empty). It knows when it began remembering (``forgot``); until a lifetime has passed since, a message it has no
record of may have been answered before, and the product's database says whether it was (``DurableAnswers``:
its reply queued in the outbox, or, kept for the worker, settled; ``answered_before``). A reply a webhook gave at
once (Twilio's TwiML, Meta's Graph messages, an SMS sent at once, a chat answer) is recorded there too once it has
gone (``record_answered``: its claim marked answered), so a message redelivered after Redis forgot is not answered
twice whichever path answered it.

The window between an answer and its row is closed by a durable claim: before a message runs (the ledger has no
record of it), the delivery claims its id in the database (``DurableAnswers.claim``: an insert under a unique
key), so a copy delivered after its answer is recorded finds it answered (``TAKEN``: the channel's "already
handled" answer), and one delivered while it runs, or after Redis restarted empty and before its answer is
recorded, finds it claimed and unanswered (``BUSY``): a channel whose provider delivers again (SMS, Meta) answers
"not now", so that a run that ended owing its reply (its release refused by a database down too) is taken over by
a later delivery once stale, never answered "handled" with nothing sent. A run that asks the provider to deliver the message again
releases its claim (``release_claim``); one whose process died is taken again once stale. When
the database cannot be asked and the ledger forgot, nothing can say the message is new: the channel gives its
"not now" answer (``UNSURE``); while the ledger remembers, it alone keeps the message answered once.

A record holds replies, never what the customer typed (a PIN is an input, not an answer). ``claim``
lets one of several deliveries arriving together act alone (send an owed SMS reply once).
``MemoryAnswerLedger`` serves the embedded default (one process); the app wires a Redis one
when sessions are in Redis (``app.storage.answer_ledger``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from typing import Any, Final, Protocol

__all__ = ["DAY_SECONDS", "AnswerLedger", "Claim", "DurableAnswers", "MemoryAnswerLedger", "answered_before",
           "claim_message", "record_answered", "release_claim"]

log = logging.getLogger("channels.answers")

DAY_SECONDS: Final = 24 * 3600


class AnswerLedger(Protocol):
    def recall(self, channel: str, message_id: str) -> dict[str, Any] | None:
        """The record kept for this message, or ``None`` (never seen, or expired). Raises nothing:
        a store that cannot be reached answers ``None`` (the engine's replay record still holds)."""

    def keep(self, channel: str, message_id: str, record: dict[str, Any]) -> None:
        """Keep (or replace) the record of this message for the ledger's lifetime. Raises nothing."""

    def claim(self, channel: str, name: str) -> bool:
        """``True`` for the first caller to claim ``name`` (a message id and what is claimed of it) in the
        ledger's lifetime, ``False`` for every other, at once, whichever process asks. Raises nothing: a
        store that cannot be reached answers ``False`` (no one may act on a claim nobody can check)."""

    def forgot(self) -> bool:
        """Whether a record of the last lifetime may be missing: the ledger began remembering less than a
        lifetime ago (its store restarted empty, or is new), or its store cannot be reached. A miss then does not
        prove a message new: the caller asks the product's database (``DurableAnswers``). Raises nothing."""


class DurableAnswers(Protocol):
    def answered(self, message_id: str) -> bool:
        """Whether the product's database shows the message ``message_id`` answered: its reply queued in the
        outbox, or, kept for the worker, settled, or its claim marked answered (``mark_answered``). Raises when the
        database cannot say."""

    def mark_answered(self, message_id: str, *, channel: str) -> None:
        """Keep that the message ``message_id`` was answered (its claim's row marked; written when it had none):
        ``answered`` says so from then on, and its claim is never taken over. Raises when it cannot be kept."""

    def claim(self, message_id: str, *, channel: str) -> Claim:
        """Claim the message ``message_id`` for the delivery about to run it, whichever process asks: ``OURS`` for
        the first caller (or one taking over a claim left stale, its message not answered), ``TAKEN`` when it was
        answered, ``BUSY`` when another delivery claimed it lately and its answer is not recorded (running now, or
        ended owing its reply). Raises when the database cannot say."""

    def release(self, message_id: str) -> None:
        """Drop the claim on ``message_id``: its run failed and the provider is asked to deliver it again. Raises
        when the database cannot be reached."""


def answered_before(ledger: AnswerLedger, answers: DurableAnswers | None, message_id: str) -> bool:
    """For a message the ledger has no record of: whether it was answered all the same, before the ledger forgot
    (asked of the database only then: while the ledger remembers its whole lifetime, a miss is a new message).
    A database that cannot say counts as "not answered": the message runs, as it did before the ledger forgot."""
    if answers is None or not ledger.forgot():
        return False
    try:
        return answers.answered(message_id)
    except Exception as exc:  # noqa: BLE001 - the database down: answering twice beats not answering
        log.warning("answered messages unreadable: %s", type(exc).__name__)
        return False


def record_answered(answers: DurableAnswers | None, message_id: str, *, channel: str) -> None:
    """Keep in the database that ``message_id`` was answered (``DurableAnswers.mark_answered``), called once the
    answer has gone; a failure is logged, never the caller's (its answer went: only a repost after Redis restarted
    empty, past the claim's stale bound, could then be answered again)."""
    if answers is None:
        return
    try:
        answers.mark_answered(message_id, channel=channel)
    except Exception as exc:  # noqa: BLE001 - the database down: the customer has the answer already
        log.warning("%s answer not recorded: %s", channel, type(exc).__name__)


class Claim(Enum):
    """What ``claim_message`` found: the message is this delivery's to run (``OURS``), answered by another delivery
    (``TAKEN``: answer "already handled"), claimed by another delivery whose answer is not recorded (``BUSY``: running
    now, or ended owing its reply), or nobody can say (``UNSURE``: answer "not now", nothing run)."""

    OURS = "ours"
    TAKEN = "taken"
    BUSY = "busy"
    UNSURE = "unsure"


def claim_message(ledger: AnswerLedger, answers: DurableAnswers | None, message_id: str, channel: str) -> Claim:
    """Claim a message the ledger has no record of before running it (``DurableAnswers.claim``). Without a
    database (the embedded default without one) it is ``OURS``: the ledger is all there is. The database down:
    ``OURS`` while the ledger remembers its whole lifetime (its record and the engine's replay record keep the
    message answered once), ``UNSURE`` once it forgot (a copy of a message answered just before Redis restarted
    could not be told from a new one)."""
    if answers is None:
        return Claim.OURS
    try:
        return answers.claim(message_id, channel=channel)
    except Exception as exc:  # noqa: BLE001 - the database down: the ledger decides whether running is safe
        forgot = ledger.forgot()
        log.warning("%s message not claimed: %s%s", channel, type(exc).__name__,
                    "; not run (the answer ledger forgot)" if forgot else "; run on the answer ledger's word")
        return Claim.UNSURE if forgot else Claim.OURS


def release_claim(answers: DurableAnswers | None, message_id: str) -> None:
    """Release the claim of a message whose run asks the provider to deliver it again; a failure is logged (the
    claim goes stale, and a later delivery takes it over then)."""
    if answers is None:
        return
    try:
        answers.release(message_id)
    except Exception as exc:  # noqa: BLE001 - the database down: the claim expires instead
        log.warning("message claim not released: %s", type(exc).__name__)


class MemoryAnswerLedger:
    """The ledger of one process: bounded (oldest records go first), each record expiring."""

    def __init__(self, ttl_seconds: int = DAY_SECONDS, max_records: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._max, self._clock = ttl_seconds, max_records, clock
        self._since = clock()    # a new process remembers nothing of before it
        self._dropped = False
        self._records: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def recall(self, channel: str, message_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._records.get((channel, message_id))
            if found is None or found[0] < self._clock():
                return None
            return dict(found[1])

    def keep(self, channel: str, message_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._records[(channel, message_id)] = (self._clock() + self._ttl, dict(record))
            self._records.move_to_end((channel, message_id))
            while len(self._records) > self._max:
                self._records.popitem(last=False)
                self._dropped = True

    def claim(self, channel: str, name: str) -> bool:
        with self._lock:
            key = ("claim:" + channel, name)
            found = self._records.get(key)
            if found is not None and found[0] >= self._clock():
                return False
            self._records[key] = (self._clock() + self._ttl, {})
            while len(self._records) > self._max:
                self._records.popitem(last=False)
                self._dropped = True
            return True

    def forgot(self) -> bool:
        return self._dropped or self._clock() - self._since < self._ttl
