"""Delivery of the outbox: each pending event becomes a message in the customer's language,
sent through the provider of its channel, with retries and a status per delivery.

One pass (``Dispatcher.run_once``) recovers rows a dead worker left behind, claims the due
rows (urgent kinds first), renders and sends each, and records the outcome:

- accepted by the provider -> ``sent`` (then ``delivered``/``failed`` from delivery reports);
- refused for good (invalid or blacklisted number) or no template -> ``failed``, kept for agents;
  a message for WhatsApp that Twilio refuses (not on WhatsApp, outside the 24-hour window) goes by SMS;
- provider unreachable or busy -> back to ``pending`` with exponential backoff, ``failed``
  after ``max_attempts``.

Consent, night and pace (each optional):

- a customer who sent STOP gets no message but ``transactional`` kinds (receipts, tokens): a queued
  one is marked ``suppressed`` with the reason, never sent later;
- during quiet hours (``QuietHours``) only ``urgent`` kinds are claimed; the others wait in the
  outbox until the window ends;
- each provider's send rate (``Pace``, shared by every worker through Redis): when it is used up the
  rest of the batch is given back untouched, and the next pass claims urgent kinds first again, so
  urgent messages overtake a bulk run.

Texts come from ``config/notifications.yaml``; a kind without a template is a configuration
error reported at start-up by ``NotificationTemplates.check``, never a silently dropped message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml

from dialogs.backends import BackendUnavailable, Rejected
from engine.formatting import TextFormatter
from menus.brand import Brand, fill_brand
from engine.masking import mask

from .pace import CHANNEL_PROVIDERS, Pace
from .quiet_hours import QuietHours
from .storage.delivery import ClaimedMessage, SqlDeliveryQueue

__all__ = ["DeliveryPass", "Dispatcher", "NotificationTemplates", "SmsSender", "StopList"]

log = logging.getLogger("notify")


class SmsSender(Protocol):
    def send(self, to: str, text: str) -> Any:
        """Hand one message to the provider; the result has ``message_id``. ``Rejected`` for good,
        ``BackendUnavailable`` for now."""


class StopList(Protocol):
    def stopped_among(self, msisdns: Collection[str]) -> set[str]:
        """Which of these numbers sent STOP (and not START since)."""


@dataclass(frozen=True)
class _Template:
    urgent: bool
    text: Mapping[str, str]
    if_present: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    transactional: bool = False     # what the customer asked for (receipt, token): goes even after STOP


@dataclass(frozen=True)
class NotificationTemplates:
    kinds: Mapping[str, _Template]
    default_language: str = "fr"

    @classmethod
    def load(cls, path: str | Path, default_language: str = "fr", brand: Brand | None = None) -> NotificationTemplates:
        """The templates of ``path``, with the operator's ``{brand}`` and ``{help_line}`` filled in."""
        raw = fill_brand(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}, brand or Brand())
        kinds = {}
        for kind, spec in (raw.get("kinds") or {}).items():
            if not isinstance(spec, dict) or not isinstance(spec.get("text"), dict):
                raise ValueError(f"{path}: kind '{kind}' needs a text per language")
            kinds[kind] = _Template(bool(spec.get("urgent")), dict(spec["text"]), dict(spec.get("if_present") or {}),
                                    bool(spec.get("transactional")))
        return cls(kinds, default_language)

    @property
    def urgent_kinds(self) -> frozenset[str]:
        return frozenset(k for k, t in self.kinds.items() if t.urgent)

    @property
    def transactional_kinds(self) -> frozenset[str]:
        return frozenset(k for k, t in self.kinds.items() if t.transactional)

    def check(self, languages: Collection[str]) -> list[str]:
        """Problems: a template without a text in one of ``languages``."""
        problems = []
        for kind, template in self.kinds.items():
            for texts in (template.text, *template.if_present.values()):
                problems += [f"notification '{kind}': no '{lang}' text" for lang in languages if not texts.get(lang)]
        return problems

    def render(self, message: ClaimedMessage, formatter: TextFormatter) -> str:
        template = self.kinds.get(message.kind)
        if template is None:
            raise LookupError(f"no template for kind '{message.kind}'")
        texts = next((t for f, t in template.if_present.items() if message.payload.get(f)), template.text)
        raw = texts.get(message.language) or texts[self.default_language]
        return formatter.fill(raw, message.payload)


@dataclass(frozen=True, slots=True)
class DeliveryPass:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    adopted: int = 0
    requeued: int = 0
    suppressed: int = 0     # the customer sent STOP
    paced: int = 0          # given back: the provider's rate was used up


class Dispatcher:
    def __init__(self, queue: SqlDeliveryQueue, templates: NotificationTemplates,
                 senders: Mapping[str, SmsSender], *, labels: Mapping[str, Mapping[str, str]] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), max_attempts: int = 8,
                 backoff: timedelta = timedelta(seconds=5), max_backoff: timedelta = timedelta(hours=1),
                 lease: timedelta = timedelta(seconds=60), settle: timedelta = timedelta(minutes=10),
                 stops: StopList | None = None, quiet: QuietHours | None = None, pace: Pace | None = None,
                 max_pace_wait: float = 1.0, sleep: Callable[[float], None] = time.sleep, batch: int = 50) -> None:
        self.queue, self.templates, self.senders = queue, templates, senders
        self.stops, self.quiet, self.pace = stops, quiet, pace
        # Rows claimed per pass: about one second's worth at the provider's rate keeps a pass short, so an
        # urgent message queued behind a bulk run goes out at the next pass.
        self.max_pace_wait, self.sleep, self.batch = max_pace_wait, sleep, batch
        self.labels = labels or {}
        self.clock = clock
        self.max_attempts, self.backoff, self.max_backoff = max_attempts, backoff, max_backoff
        self.lease, self.settle = lease, settle
        self._formatters: dict[str, TextFormatter] = {}

    def run_once(self, limit: int | None = None) -> DeliveryPass:
        if not self.senders:   # no provider configured: every message waits, untouched, for one
            return DeliveryPass()
        limit = limit or self.batch
        now = self.clock()
        adopted, requeued = self.queue.recover(now, self.lease, self.settle)
        sent = retried = failed = suppressed = paced = 0
        urgent = self.templates.urgent_kinds
        # At night only urgent kinds are taken; the others stay pending until the window ends.
        only = urgent if self.quiet is not None and self.quiet.active(now) else None
        claimed = self.queue.claim(now, self.lease, limit, urgent, only_kinds=only)
        transactional = self.templates.transactional_kinds
        stopped = self.stops.stopped_among({m.msisdn for m in claimed if m.kind not in transactional}) \
            if self.stops is not None else set()
        for index, message in enumerate(claimed):
            if message.msisdn in stopped and message.kind not in transactional:
                log.info("outbox %d (%s) to %s not sent: the customer sent STOP", message.id, message.kind,
                         mask(message.msisdn))
                self.queue.suppress(message.id, reason="suppressed: the customer sent STOP")
                suppressed += 1
                continue
            outcome = self._deliver(message, now)
            if outcome == "paced":
                rest = [m.id for m in claimed[index:]]
                self.queue.release(rest)
                paced = len(rest)
                break
            sent += outcome == "sent"
            retried += outcome == "retry"
            failed += outcome == "failed"
        return DeliveryPass(sent, retried, failed, adopted, requeued, suppressed, paced)

    def _slot(self, channel: str) -> bool:
        """Wait (briefly) for a send slot of the channel's provider; False when the wait is longer."""
        if self.pace is None:
            return True
        provider = CHANNEL_PROVIDERS.get(channel, channel)
        while True:
            wait = self.pace.acquire(provider)
            if wait <= 0:
                return True
            if wait > self.max_pace_wait:
                return False
            self.sleep(wait)

    def _deliver(self, message: ClaimedMessage, now: datetime) -> str:
        try:
            text = self.templates.render(message, self._formatter(message.language))
        except LookupError as exc:
            log.error("outbox %d (%s) to %s cannot be written: %s", message.id, message.kind, mask(message.msisdn), exc)
            self.queue.failed(message.id, error=str(exc))
            return "failed"
        # The customer's channel first; SMS when it refuses the message or is not configured.
        channels = [message.channel] + (["sms"] if message.channel != "sms" else [])
        refusal = ""
        for channel in channels:
            sender = self.senders.get(channel)
            if sender is None:
                refusal = f"no sender configured for {channel}"
                continue
            if not self._slot(channel):
                return "paced"
            try:
                result = sender.send(message.msisdn, text)
            except Rejected as exc:
                log.warning("outbox %d (%s) to %s refused on %s: %s", message.id, message.kind,
                            mask(message.msisdn), channel, exc.reason)
                refusal = f"refused: {exc.reason}"
                continue
            except BackendUnavailable as exc:
                return self._retry(message, now, f"{channel}: {exc}")
            self.queue.sent(message.id, channel=channel, message_id=str(result.message_id), now=self.clock())
            log.info("outbox %d (%s) sent to %s by %s", message.id, message.kind, mask(message.msisdn), channel)
            return "sent"
        if refusal.startswith("no sender"):
            return self._retry(message, now, refusal)
        self.queue.failed(message.id, error=refusal)
        return "failed"

    def _retry(self, message: ClaimedMessage, now: datetime, error: str) -> str:
        if message.attempts >= self.max_attempts:
            log.error("outbox %d (%s) to %s given up after %d attempts: %s", message.id, message.kind,
                      mask(message.msisdn), message.attempts, error)
            self.queue.failed(message.id, error=f"gave up: {error}")
            return "failed"
        delay = min(self.max_backoff, self.backoff * (2 ** (message.attempts - 1)))
        self.queue.retry(message.id, error=error, at=now + delay)
        return "retry"

    def _formatter(self, language: str) -> TextFormatter:
        formatter = self._formatters.get(language)
        if formatter is None:
            formatter = self._formatters[language] = TextFormatter(language, self.labels)
        return formatter
