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
once (Twilio's TwiML, Meta's Graph messages) is recorded there too once it has gone (``record_answered``), so a
message redelivered after Redis forgot is not answered twice whichever path answered it.

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
from typing import Any, Final, Protocol

from engine.masking import mask

__all__ = ["DAY_SECONDS", "AnswerLedger", "DurableAnswers", "MemoryAnswerLedger", "answered_before",
           "record_answered"]

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
        outbox, or, kept for the worker, settled, or answered at once (``answered_at_once``). Raises when the
        database cannot say."""

    def answered_at_once(self, message_id: str, *, msisdn: str, channel: str, provider: str, number: str = "") -> None:
        """Keep that the message ``message_id`` from ``msisdn`` (E.164), written to our ``number`` at ``provider``,
        was answered at once by its webhook (no outbox row, no kept message): ``answered`` says so from then on.
        Once per message id (a second call changes nothing). Raises when it cannot be kept."""


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


def record_answered(answers: DurableAnswers | None, message_id: str, *, msisdn: str, channel: str, provider: str,
                    number: str = "") -> None:
    """Keep in the database that a webhook answered ``message_id`` at once (``DurableAnswers.answered_at_once``),
    called once the answer has gone; a failure is logged, never the webhook's (its answer went: only a repost after
    Redis restarted empty could then be answered again, as before)."""
    if answers is None or not msisdn:
        return
    try:
        answers.answered_at_once(message_id, msisdn=msisdn, channel=channel, provider=provider, number=number)
    except Exception as exc:  # noqa: BLE001 - the database down: the customer has the answer already
        log.warning("answer at once to %s not recorded: %s", mask(msisdn), type(exc).__name__)


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
