"""Delivery of the outbox: each pending event becomes a message in the customer's language,
sent through the provider of its channel, with retries and a status per delivery.

One pass (``Dispatcher.run_once``) recovers rows a dead worker left behind, claims the due
rows (urgent kinds first), renders and sends each, and records the outcome:

- accepted by the provider -> ``sent`` (then ``delivered``/``failed`` from delivery reports);
- refused for good (invalid or blacklisted number) or no template -> ``failed``, kept for agents;
  a message for WhatsApp that Twilio or Meta refuses (not on WhatsApp, outside the 24-hour window) goes by SMS;
- provider unreachable or busy -> back to ``pending`` with exponential backoff, ``failed``
  after ``max_attempts``.

Consent, night and pace (each optional):

- a customer who sent STOP gets no message but ``transactional`` kinds (receipts, tokens): a queued
  one is marked ``suppressed`` with the reason, never sent later;
- a kind that needs an opt-in (``opt_in:`` in the templates: bill issued, low credit, outage in my
  zone) is checked again when sent: a topic turned off after the message was queued stops it too;
- during quiet hours (``QuietHours``) only ``urgent`` kinds are claimed; the others wait in the
  outbox until the window ends;
- each provider's send rate (``Pace``, shared by every worker through Redis): when it is used up the
  rest of the batch is given back untouched, and the next pass claims urgent kinds first again, so
  urgent messages overtake a bulk run.

Facts that may have changed since queueing are checked again when sent:

- a kind that needs an opt-in (see above);
- "power is back" (``unless_outage: zone`` in the templates): when the back office lists an ongoing
  outage in the payload's zone again (declared anew, or the restoration withdrawn), the message is
  ``suppressed``, never sent later; one look-up per zone and pass; the back office unreachable, the
  message waits (retried) rather than risk saying power is back while it is off. A customer's "SMS me
  when power is back" that the restoration ended is made again for the zone (``PowerBackRequests``).

Secrets (one-time codes, prepaid tokens) are sealed in the row (``storage/outbox_seal.py``) and opened
only here, at send time; one that cannot be opened (another ``OUTBOX_SEAL_KEY``, or erased after a first
send) makes the message ``failed`` with the reason, never a message with a garbled or missing code. Sent,
they are erased, except on WhatsApp, whose provider may report later that the customer's 24-hour window was
closed (the message then goes by SMS, with its code): there they stay sealed until the delivery is final
(delivered or read, failed, or sent again by SMS) or ``keep_secrets`` after the send (or the code's own
validity, if shorter) has passed; each pass erases those past their bound (at most once a minute). A code
past its validity (``expires_after``, the payload's minutes; else ``valid_minutes`` of the kind, checked at
start-up against where the product sets it: ``code_validity.py``) is not sent late: ``failed``, "its code
expired", erased. A kind that is out of date after a while (``stale_after_minutes``: the reply to an SMS
command, which says the balance of then) is marked ``expired`` once that long in the outbox, with the
reason, its sealed text erased, never sent.

Where each message goes is read when it is sent (``ContactBook``): the channel the customer chose
(SMS, WhatsApp, or e-mail to their confirmed address), then SMS when that channel refuses the
message, has no sender configured, or (e-mail) no confirmed address. A kind bound to one channel
(``channel: email``: the code that proves an address) goes there only, to the address in its payload; a
kind of ``channel: whatsapp`` (the worker's answer to a WhatsApp message) goes to the number's WhatsApp,
then SMS, whatever the customer chose.

A reply goes back the way the customer wrote: a row that names its provider (``REPLY_PROVIDER``, and our number
the message was written to, ``REPLY_FROM``: ``app/sms_replies.py``) is sent by that provider's sender
(``reply_senders``), from that number, at that provider's rate, whichever provider sends the notifications
(``senders``): another provider's number would be another chat on the customer's phone, with its own 24-hour
window. When that provider is no longer configured the reply goes by SMS, logged, as a refused WhatsApp message
does: never lost, never from the other number. A row without a provider (queued by an older version) goes through
the notifications' sender, as it did.

WhatsApp's 24-hour window: a kind with a WhatsApp template goes as its free text to a customer who wrote to
the sending provider's number (``whatsapp_number``, the one notifications go from) less than ``window`` ago (``WhatsAppWindows``, read once a pass for the numbers
of such kinds), as the template otherwise. Free text the provider refuses as outside the window after all
(``window_closed``: its refusal reasons) goes as the template at once; reported later, the row is marked
(``sent(template_next=True)``) so the queue makes it pending again as the template (``AS_TEMPLATE``), once; a
refused template goes by SMS as any refusal does. A worker that died between the free text's send and its record
leaves a stale row: the "outside the window" report it adopts sends it again as the template too (``recover``).

Texts come from ``config/notifications.yaml``; a kind without a template is a configuration
error reported at start-up by ``NotificationTemplates.check``, never a silently dropped message.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import yaml

from dialogs.backends import BackendError, BackendUnavailable, Outage, Rejected
from dialogs.stores import ContactInfo
from engine.formatting import TextFormatter
from engine.masking import mask
from menus.brand import Brand, fill_brand

from .pace import CHANNEL_PROVIDERS, Pace
from .quiet_hours import QuietHours
from .storage.delivery import (
    AS_TEMPLATE,
    ONLY_CHANNEL,
    PARTS_SENT,
    SMS_PARTS,
    ClaimedMessage,
    SqlDeliveryQueue,
)
from .storage.outbox_seal import SEALED, OutboxSeal, SealBroken

__all__ = ["CONTINUED", "REPLY_FROM", "REPLY_MESSAGES", "REPLY_PROVIDER", "ContactBook", "DeliveryPass", "Dispatcher",
           "Letter", "LetterSender", "NotificationTemplates", "OptIns", "Outages", "PartRejected", "PartTexts",
           "PowerBackRequests", "SmsSender", "StopList", "WhatsAppTemplate", "WhatsAppWindows"]

log = logging.getLogger("notify")

# Channels whose provider may report a message undeliverable after taking it, for a reason SMS does not
# share (WhatsApp: the 24-hour window was closed): a code or token sent there is kept sealed for that SMS.
_KEPT_ON: Final = frozenset({"whatsapp"})
_SWEEP_EVERY: Final = timedelta(minutes=1)
# Payload fields of a reply queued with its channel's own layout (``app/sms_replies.py``): the messages as the
# channel's adapter renders the screen (sealed, like the text), and the provider whose layout they are.
REPLY_MESSAGES: Final = "reply_messages"
REPLY_PROVIDER: Final = "reply_provider"
# Our number the customer wrote to (Twilio: our E.164 WhatsApp sender; Meta: our phone number id): the reply goes
# from it, through ``REPLY_PROVIDER``.
REPLY_FROM: Final = "reply_from"
# A reply that shows no code or token (``channels.reply_secrets``: a bill summary, a menu): its sealed text is kept
# after a WhatsApp send for ``keep_plain`` (``OUTBOX_KEEP_PLAIN_REPLIES_HOURS``, a day), not the hour of a code, so
# that a late "outside the window" still brings it by SMS, and sent again so it is not out of date before that (the
# customer asked for it and has not had it whole). Absent (a reply queued before it was marked, or one showing a
# code): kept as a code is.
REPLY_PLAIN: Final = "reply_plain"
# The label (``labels:`` in the menus) that opens an SMS bringing only the end of a message WhatsApp delivered in
# part, and its words when the menus do not name it.
CONTINUED: Final = "continued"
_CONTINUED_WORDS: Final = {"fr": "(suite)", "en": "(continued)"}


class PartRejected(Rejected):
    """A message in several parts refused for good at part ``taken`` (from 0; ``taken`` parts went before it):
    the customer has the first ones, so SMS brings ``rest``, the texts of the others, not the whole message."""

    def __init__(self, reason: str, code: str, taken: int, rest: tuple[str, ...] = ()) -> None:
        super().__init__(reason, code)
        self.taken, self.rest = taken, rest


class SmsSender(Protocol):
    def send(self, to: str, text: str) -> Any:
        """Hand one message to the provider; the result has ``message_id``. ``Rejected`` for good,
        ``BackendUnavailable`` for now."""


@dataclass(frozen=True, slots=True)
class WhatsAppTemplate:
    """An approved WhatsApp template standing for a message outside the 24-hour window: its name, the
    message's language code, and its body parameters filled from the payload."""

    name: str
    language: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Letter:
    """What a message is about, for a sender that says how to stop it (e-mail: ``app/email_letters.py``)
    or sends it as an approved template (WhatsApp through Meta: ``app/whatsapp_letters.py``).

    ``topic``: what its unsubscribe link stops (the opt-in topic, the kind, or ``all`` for a transactional
    kind); None for a kind bound to its channel (an address's own code). ``template``: the kind's WhatsApp
    template (``whatsapp_template`` in the templates), filled; None when the kind has none, or when the
    customer's 24-hour window is open (the dispatcher then sends the free text)."""

    kind: str
    language: str
    topic: str | None
    template: WhatsAppTemplate | None = None
    # A reply laid out by its channel's adapter (``REPLY_MESSAGES``: Twilio's bodies, Meta's Graph messages)
    # and which provider's layout it is: a sender of that provider sends these, in order, instead of the text.
    # A reply goes through that provider only, from ``from_number`` (ours the customer wrote to) when known.
    messages: tuple[Any, ...] = ()
    provider: str = ""
    from_number: str = ""
    # The ids of the parts of a message in several parts that the provider took already (a retried pass
    # sends only the rest), and where the sender records each part it sends (``SqlDeliveryQueue.parts_sent``).
    parts_sent: tuple[str, ...] = ()
    progress: Callable[[list[str]], None] | None = field(default=None, compare=False)


@runtime_checkable
class PartTexts(Protocol):
    def part_texts(self, text: str, letter: Letter) -> list[str]:
        """The text of each part ``send_letter`` sends (or sent) for this message, in order: what SMS brings of the
        parts WhatsApp could not deliver (``SMS_PARTS``)."""


@runtime_checkable
class LetterSender(Protocol):
    def send_letter(self, to: str, text: str, letter: Letter) -> Any:
        """As ``SmsSender.send``, knowing what the message is about; ``Rejected`` also when the address
        asked for no more of it (then the next channel, SMS, takes it)."""


class StopList(Protocol):
    def stopped_among(self, msisdns: Collection[str]) -> set[str]:
        """Which of these numbers sent STOP (and not START since)."""


class OptIns(Protocol):
    def subscribed_among(self, wanted: Collection[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which of these (number, topic, scope) subscriptions are active now."""


class ContactBook(Protocol):
    def contacts_among(self, msisdns: Collection[str]) -> Mapping[str, ContactInfo]:
        """The channel (and confirmed e-mail) of those numbers that chose one."""


class Outages(Protocol):
    def outages_in_zone(self, zone: str) -> list[Outage]:
        """The zone's ongoing outages (the back office's incident API); ``BackendUnavailable`` when down."""


class WhatsAppWindows(Protocol):
    def last_inbound_among(self, msisdns: Collection[str], provider: str, number: str = "") -> Mapping[str, datetime]:
        """When each of these customers last wrote to our WhatsApp business number ``number`` at ``provider``
        (never: absent)."""


class PowerBackRequests(Protocol):
    def renew_power_back(self, msisdn: str, zone: str, scopes: Collection[str]) -> int:
        """The customer's "SMS me when power is back" that a restoration of ``zone`` ended (for one of
        ``scopes``) made again for the zone; how many had ended."""


@dataclass(frozen=True)
class _Template:
    urgent: bool
    text: Mapping[str, str]
    if_present: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    transactional: bool = False     # what the customer asked for (receipt, token): goes even after STOP
    opt_in: tuple[str, str] | None = None   # (topic, payload field of its scope): re-checked when sent
    channel: str | None = None      # bound to this channel (no preference, no fallback; whatsapp: SMS after it)
    unless_outage: str | None = None  # payload field of a zone: not sent while that zone has an ongoing outage
    expires_after: str | None = None  # payload field of the minutes its code is valid: not sent once they passed
    # The same, fixed for the kind (checked against its source: code_validity); with ``expires_after``, for a
    # row whose payload does not say.
    valid_minutes: int | None = None
    # (name, parameters as texts with placeholders): the approved WhatsApp template sent in its place.
    whatsapp_template: tuple[str, tuple[str, ...]] | None = None
    # Minutes after queueing when the message is out of date (an SMS reply): ``expired``, never sent.
    stale_after_minutes: int | None = None


_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")


def _whatsapp_template(path: str | Path, kind: str, spec: Any) -> tuple[str, tuple[str, ...]] | None:
    """``whatsapp_template: {name: outage_alert, params: ["{zone}", "{eta:datetime}"]}``, checked."""
    if spec is None:
        return None
    name = spec.get("name") if isinstance(spec, dict) else None
    params = spec.get("params", []) if isinstance(spec, dict) else None
    if not isinstance(name, str) or not _TEMPLATE_NAME.match(name) or not isinstance(params, list) \
            or not all(isinstance(p, str) for p in params):
        raise ValueError(f"{path}: kind '{kind}': whatsapp_template needs a name (lower case letters, digits, _) "
                         "and params, a list of texts")
    return name, tuple(params)


def _minutes(path: str | Path, kind: str, spec: Mapping[str, Any], key: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{path}: kind '{kind}': {key} must be a whole number of minutes above 0")
    return value


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
                raise ValueError(f"{path}: kind '{kind}' needs a text per language")  # noqa: TRY004 - a bad file
            opt_in = spec.get("opt_in")
            if opt_in is not None and not (isinstance(opt_in, dict) and opt_in.get("topic")):
                raise ValueError(f"{path}: kind '{kind}': opt_in needs a topic (and the payload field of its scope)")
            kinds[kind] = _Template(bool(spec.get("urgent")), dict(spec["text"]), dict(spec.get("if_present") or {}),
                                    bool(spec.get("transactional")),
                                    (str(opt_in["topic"]), str(opt_in.get("scope") or "")) if opt_in else None,
                                    spec.get("channel") or None, spec.get("unless_outage") or None,
                                    spec.get("expires_after") or None, _minutes(path, kind, spec, "valid_minutes"),
                                    _whatsapp_template(path, kind, spec.get("whatsapp_template")),
                                    _minutes(path, kind, spec, "stale_after_minutes"))
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
        payload = message.payload
        if template.expires_after is not None and template.valid_minutes is not None \
                and payload.get(template.expires_after) is None:
            # Queued without its minutes (an older version): the kind's own, never "valid - minutes".
            payload = {**payload, template.expires_after: template.valid_minutes}
        return formatter.fill(raw, payload)


@dataclass(frozen=True, slots=True)
class DeliveryPass:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    adopted: int = 0
    requeued: int = 0
    suppressed: int = 0     # the customer sent STOP or turned the topic off
    paced: int = 0          # given back: the provider's rate was used up
    expired: int = 0        # out of date before it could be sent (``stale_after_minutes``)
    erased: int = 0         # sent messages whose kept code or token was erased, past their bound


class Dispatcher:
    def __init__(self, queue: SqlDeliveryQueue, templates: NotificationTemplates,
                 senders: Mapping[str, SmsSender], *, labels: Mapping[str, Mapping[str, str]] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), max_attempts: int = 8,
                 backoff: timedelta = timedelta(seconds=5), max_backoff: timedelta = timedelta(hours=1),
                 lease: timedelta = timedelta(seconds=60), settle: timedelta = timedelta(minutes=10),
                 stops: StopList | None = None, quiet: QuietHours | None = None, pace: Pace | None = None,
                 max_pace_wait: float = 1.0, sleep: Callable[[float], None] = time.sleep, batch: int = 50,
                 opt_ins: OptIns | None = None, contacts: ContactBook | None = None,
                 seal: OutboxSeal | None = None, outages: Outages | None = None,
                 power_back: PowerBackRequests | None = None, providers: Mapping[str, str] | None = None,
                 keep_secrets: timedelta = timedelta(minutes=60), keep_plain: timedelta = timedelta(hours=24),
                 windows: WhatsAppWindows | None = None,
                 window: timedelta = timedelta(minutes=1410), window_closed: Collection[str] = (),
                 reply_senders: Mapping[str, SmsSender] | None = None, whatsapp_number: str = "") -> None:
        self.queue, self.templates, self.senders = queue, templates, senders
        # Each WhatsApp provider configured to send, by name: a reply goes back through the one the customer wrote
        # to (``REPLY_PROVIDER``), whichever sends the notifications.
        self.reply_senders = dict(reply_senders or {})
        # Which provider's rate each channel's sends use (WhatsApp: Twilio's, or Meta's when Meta sends).
        self.providers = {**CHANNEL_PROVIDERS, **(providers or {})}
        self.seal, self.outages, self.power_back = seal, outages, power_back
        self.stops, self.quiet, self.pace = stops, quiet, pace
        self.opt_ins, self.contacts = opt_ins, contacts
        # Rows claimed per pass: about one second's worth at the provider's rate keeps a pass short, so an
        # urgent message queued behind a bulk run goes out at the next pass.
        self.max_pace_wait, self.sleep, self.batch = max_pace_wait, sleep, batch
        self.labels = labels or {}
        self.clock = clock
        self.max_attempts, self.backoff, self.max_backoff = max_attempts, backoff, max_backoff
        self.lease, self.settle = lease, settle
        self.keep_secrets, self.keep_plain = keep_secrets, keep_plain
        # WhatsApp's 24-hour window as we noted it (less a margin), and the refusals that say it was closed.
        self.windows, self.window, self.window_closed = windows, window, frozenset(window_closed)
        # The business number notifications go from (Meta's phone number id, Twilio's sender): the window that
        # counts is the customer's with that number, not with another of ours.
        self.whatsapp_number = whatsapp_number.removeprefix("whatsapp:")
        self._swept_at: datetime | None = None
        self._formatters: dict[str, TextFormatter] = {}
        # Kinds whose free text may stand for their WhatsApp template (crash recovery needs to know).
        self._template_kinds = frozenset(k for k, t in templates.kinds.items() if t.whatsapp_template is not None)

    def run_once(self, limit: int | None = None) -> DeliveryPass:
        if not self.senders and not self.reply_senders:   # no provider configured: every message waits for one
            return DeliveryPass()
        limit = limit or self.batch
        now = self.clock()
        erased = self._erase_kept_secrets(now)
        adopted, requeued = self.queue.recover(now, self.lease, self.settle, self._template_kinds)
        sent = retried = failed = suppressed = paced = expired_count = 0
        urgent = self.templates.urgent_kinds
        # At night only urgent kinds are taken; the others stay pending until the window ends.
        only = urgent if self.quiet is not None and self.quiet.active(now) else None
        claimed = self.queue.claim(now, self.lease, limit, urgent, only_kinds=only)
        transactional = self.templates.transactional_kinds
        stopped = self.stops.stopped_among({m.msisdn for m in claimed if m.kind not in transactional}) \
            if self.stops is not None else set()
        wanted = {m.id: self._opt_in_of(m) for m in claimed}
        active = self.opt_ins.subscribed_among({w for w in wanted.values() if w is not None}) \
            if self.opt_ins is not None else None
        contacts = self.contacts.contacts_among({m.msisdn for m in claimed}) if self.contacts is not None else {}
        open_windows = self._open_windows(claimed, now)
        outage_in: dict[str, bool | None] = {}      # zone -> an outage is ongoing (None: could not know)
        for index, message in enumerate(claimed):
            if message.msisdn in stopped and message.kind not in transactional:
                log.info("outbox %d (%s) to %s not sent: the customer sent STOP", message.id, message.kind,
                         mask(message.msisdn))
                self.queue.suppress(message.id, reason="suppressed: the customer sent STOP")
                suppressed += 1
                continue
            stale = self._stale(message, now)
            if stale:
                # Out of date (an answer to a question asked long ago): kept for agents, never sent.
                log.info("outbox %d (%s) to %s not sent: %s", message.id, message.kind, mask(message.msisdn), stale)
                self.queue.expire(message.id, reason=stale)
                expired_count += 1
                continue
            expired = self._expired(message, now)
            if expired:
                # A code past its validity would only fail where the customer types it: never sent, erased.
                log.info("outbox %d (%s) to %s not sent: %s", message.id, message.kind, mask(message.msisdn), expired)
                self.queue.failed(message.id, error=f"not sent: {expired}")
                failed += 1
                continue
            opt_in = wanted[message.id]
            if active is not None and opt_in is not None and opt_in not in active:
                # Turned off between queueing and now: what the customer says last is what counts.
                log.info("outbox %d (%s) to %s not sent: the customer turned %s off", message.id, message.kind,
                         mask(message.msisdn), opt_in[1])
                self.queue.suppress(message.id, reason=f"suppressed: the customer turned {opt_in[1]} off")
                suppressed += 1
                continue
            zone = self._outage_zone_of(message)
            if zone is not None:
                if zone not in outage_in:
                    outage_in[zone] = self._outage_ongoing(zone)
                if outage_in[zone] is None:
                    outcome = self._retry(message, now, f"incidents: cannot check zone {zone} is back")
                    retried += outcome == "retry"
                    failed += outcome == "failed"
                    continue
                if outage_in[zone]:
                    # Declared again (or the restoration withdrawn) since queueing: power is not back.
                    log.info("outbox %d (%s) to %s not sent: an outage is ongoing in zone %s again", message.id,
                             message.kind, mask(message.msisdn), zone)
                    reason = f"suppressed: outage ongoing again in zone {zone}"
                    # The restoration ended the customer's "SMS me when power is back": it was not answered,
                    # so it is kept for the next restoration.
                    scopes = [zone, *map(str, message.payload.get("outage_ids") or [])]
                    if self.power_back is not None and self.power_back.renew_power_back(message.msisdn, zone, scopes):
                        reason += "; the request to be told when power is back is kept"
                    self.queue.suppress(message.id, reason=reason)
                    suppressed += 1
                    continue
            outcome = self._deliver(message, now, contacts.get(message.msisdn), message.msisdn in open_windows)
            if outcome == "paced":
                rest = [m.id for m in claimed[index:]]
                self.queue.release(rest)
                paced = len(rest)
                break
            sent += outcome == "sent"
            retried += outcome == "retry"
            failed += outcome == "failed"
        return DeliveryPass(sent, retried, failed, adopted, requeued, suppressed, paced, expired_count, erased)

    def _erase_kept_secrets(self, now: datetime) -> int:
        """Erase the codes and tokens kept for a late WhatsApp failure (``_KEPT_ON``) once their bound passed:
        ``keep_secrets`` after the send, or the code's own validity if it ends first (an SMS sent after it
        would be refused anyway). At most once a minute: the query reads every sent row still sealed."""
        if self._swept_at is not None and now - self._swept_at < _SWEEP_EVERY:
            return 0
        self._swept_at = now
        due = [message.id for message, sent_at in self.queue.kept_secrets()
               if now >= sent_at + self._keep_for(message) or self._expired(message, now)]
        erased = self.queue.erase_secrets(due)
        if erased:
            log.info("%d sent message(s): kept code or token erased, no late failure reported in time", erased)
        return erased

    def _open_windows(self, claimed: Collection[ClaimedMessage], now: datetime) -> set[str]:
        """The numbers, among those of kinds with a WhatsApp template, whose window with our WhatsApp sender is
        open (they wrote less than ``window`` ago): one query a pass, none when no such kind was claimed."""
        if self.windows is None or self.window <= timedelta(0):
            return set()
        wanted = {m.msisdn for m in claimed if not m.payload.get(AS_TEMPLATE) and (
            (t := self.templates.kinds.get(m.kind)) is not None and t.whatsapp_template is not None)}
        if not wanted:
            return set()
        last = self.windows.last_inbound_among(wanted, self.providers.get("whatsapp", "whatsapp"),
                                               self.whatsapp_number)
        return {msisdn for msisdn, at in last.items() if now < at + self.window}

    def _slot(self, provider: str) -> bool:
        """Wait (briefly) for a send slot of ``provider``; False when the wait is longer."""
        if self.pace is None:
            return True
        while True:
            wait = self.pace.acquire(provider)
            if wait <= 0:
                return True
            if wait > self.max_pace_wait:
                return False
            self.sleep(wait)

    def _opt_in_of(self, message: ClaimedMessage) -> tuple[str, str, str] | None:
        template = self.templates.kinds.get(message.kind)
        if template is None or template.opt_in is None:
            return None
        topic, field_name = template.opt_in
        return (message.msisdn, topic, str(message.payload.get(field_name) or "") if field_name else "")

    def _letter(self, message: ClaimedMessage) -> Letter:
        letter = self._what_about(message)
        messages = message.payload.get(REPLY_MESSAGES)
        sent = message.payload.get(PARTS_SENT)
        return replace(letter, messages=tuple(messages) if isinstance(messages, list) else (),
                       provider=str(message.payload.get(REPLY_PROVIDER) or ""),
                       from_number=str(message.payload.get(REPLY_FROM) or ""),
                       parts_sent=tuple(map(str, sent)) if isinstance(sent, list) else (),
                       progress=lambda ids: self.queue.parts_sent(message.id, ids))

    def _what_about(self, message: ClaimedMessage) -> Letter:
        template = self.templates.kinds.get(message.kind)
        if template is None or template.channel:
            return Letter(message.kind, message.language, None)
        topic = template.opt_in[0] if template.opt_in else ("all" if template.transactional else message.kind)
        whatsapp = None
        if template.whatsapp_template is not None:
            name, params = template.whatsapp_template
            formatter = self._formatter(message.language)
            whatsapp = WhatsAppTemplate(name, message.language or self.templates.default_language,
                                        tuple(formatter.fill(p, message.payload) for p in params))
        return Letter(message.kind, message.language, topic, whatsapp)

    def _outage_zone_of(self, message: ClaimedMessage) -> str | None:
        template = self.templates.kinds.get(message.kind)
        if template is None or template.unless_outage is None or self.outages is None:
            return None
        return str(message.payload.get(template.unless_outage) or "") or None

    def _keep_for(self, message: ClaimedMessage) -> timedelta:
        """How long after a WhatsApp send the message's sealed secrets are kept for a late failure's SMS: a reply
        showing no code or token (``REPLY_PLAIN``) for ``keep_plain``, anything else ``keep_secrets``."""
        return max(self.keep_plain, self.keep_secrets) if message.payload.get(REPLY_PLAIN) else self.keep_secrets

    def _stale(self, message: ClaimedMessage, now: datetime) -> str | None:
        """Why the message is out of date (queued more than its kind's ``stale_after_minutes`` ago), or ``None``.
        A plain reply WhatsApp took and then could not deliver, pending again for SMS (``ONLY_CHANNEL``), is out
        of date only as long after as its text is kept (``_keep_for``): it left in time, and is owed."""
        template = self.templates.kinds.get(message.kind)
        minutes = template.stale_after_minutes if template is not None else None
        if minutes is not None and message.payload.get(ONLY_CHANNEL) and message.payload.get(REPLY_PLAIN):
            minutes = int(self._keep_for(message).total_seconds() // 60)
        if minutes is None or message.created_at is None or now < message.created_at + timedelta(minutes=minutes):
            return None
        return f"expired: out of date after {minutes} minutes in the outbox"

    def _expired(self, message: ClaimedMessage, now: datetime) -> str | None:
        """Why the message's code can no longer be used (``valid_minutes``, ``expires_after``), or ``None``."""
        template = self.templates.kinds.get(message.kind)
        if template is None or message.created_at is None:
            return None
        said = message.payload.get(template.expires_after) if template.expires_after is not None else None
        if said is not None:     # the payload's minutes first: the code's own validity
            try:
                minutes = int(said)
            except (TypeError, ValueError):
                return None
        elif template.valid_minutes is not None:
            minutes = template.valid_minutes
        else:
            return None
        if minutes <= 0 or now < message.created_at + timedelta(minutes=minutes):
            return None
        return f"its code expired before it could be sent (valid {minutes} minutes); the customer asks for a new one"

    def _outage_ongoing(self, zone: str) -> bool | None:
        """Whether the back office lists an ongoing outage in ``zone``; ``None`` when it cannot say now."""
        assert self.outages is not None
        try:
            return any(o.status == "ongoing" for o in self.outages.outages_in_zone(zone))
        except BackendError as exc:     # down, or refusing us (a bad API key): wait, never guess
            log.warning("zone %s: outages unknown (%s); its power-back messages wait", zone, exc)
            return None

    def _opened(self, message: ClaimedMessage) -> ClaimedMessage:
        """The message with its sealed secrets back in the payload; ``SealBroken`` when they cannot be."""
        if not message.payload.get(SEALED):
            return message
        if self.seal is None:
            raise SealBroken("its sealed code cannot be opened: this worker has no OUTBOX_SEAL_KEY")
        return replace(message, payload=self.seal.open(message.payload, message.sealed))

    def _route(self, message: ClaimedMessage, contact: ContactInfo | None) -> list[tuple[str, str | None]]:
        """(channel, address) in the order to try: the customer's channel, then SMS."""
        only = message.payload.get(ONLY_CHANNEL)
        if only:    # sent again on the one channel left to it (WhatsApp could not deliver it: SMS)
            return [(str(only), message.msisdn)]
        template = self.templates.kinds.get(message.kind)
        if template is not None and template.channel == "whatsapp":
            # The answer to a WhatsApp message goes back there, whatever the customer chose; SMS if refused.
            return [("whatsapp", message.msisdn), ("sms", message.msisdn)]
        if template is not None and template.channel:
            # Bound to its channel: an address's code never goes anywhere else.
            bound = message.payload.get("email") if template.channel == "email" else message.msisdn
            return [(template.channel, str(bound) if bound else None)]
        preferred = contact.channel if contact is not None else message.channel or "sms"
        route: list[tuple[str, str | None]] = []
        if preferred == "email":
            route.append(("email", contact.email if contact is not None else None))
        elif preferred != "sms":
            route.append((preferred, message.msisdn))
        return route + [("sms", message.msisdn)]

    def _deliver(self, message: ClaimedMessage, now: datetime, contact: ContactInfo | None = None,
                 window_open: bool = False) -> str:
        try:
            message = self._opened(message)
        except SealBroken as exc:
            # Never sent without its code (or with a garbled one): failed, the reason for IT and agents.
            log.error("outbox %d (%s) to %s not sent: %s", message.id, message.kind, mask(message.msisdn), exc)
            self.queue.failed(message.id, error=f"not sent: {exc}")
            return "failed"
        try:
            text = self.templates.render(message, self._formatter(message.language))
        except LookupError as exc:
            log.error("outbox %d (%s) to %s cannot be written: %s", message.id, message.kind, mask(message.msisdn), exc)
            self.queue.failed(message.id, error=str(exc))
            return "failed"
        # The parts SMS brings of a message WhatsApp delivered in part (none: the whole message).
        sms_parts: list[int] | None = None
        if message.payload.get(ONLY_CHANNEL) == "sms" and isinstance(message.payload.get(SMS_PARTS), list):
            # WhatsApp delivered the first parts, then said the window was closed: SMS brings the others only.
            text = self._rest_of(message, text)
            sms_parts = [i for i in message.payload[SMS_PARTS] if isinstance(i, int)]
        # The customer's channel first; SMS when it refuses the message, is not configured or has no address.
        refusal = ""
        for channel, address in self._route(message, contact):
            if not address:
                refusal = f"refused: no {channel} address"
                continue
            # A reply goes back through the provider the customer wrote to; anything else by the channel's sender.
            provider = str(message.payload.get(REPLY_PROVIDER) or "") if channel == "whatsapp" else ""
            sender = self.reply_senders.get(provider) if provider else self.senders.get(channel)
            if sender is None and provider:
                # Not from another provider's number (another chat, another window): SMS, as for a refusal.
                log.warning("outbox %d (%s) to %s: the customer wrote through %s, which is no longer configured "
                            "to send; not sent on WhatsApp", message.id, message.kind, mask(message.msisdn), provider)
                refusal = f"refused: {provider} no longer configured for WhatsApp replies"
                continue
            if sender is None:
                refusal = f"no sender configured for {channel}"
                continue
            if not self._slot(provider or self.providers.get(channel, channel)):
                return "paced"
            letter = self._letter(message) if isinstance(sender, LetterSender) else None
            # Inside the customer's window a kind with a template goes as its free text: it says more and
            # Meta does not bill it. Outside, the template.
            free = channel == "whatsapp" and window_open and letter is not None and letter.template is not None
            try:
                result, instead_of_template = self._send_free_or_template(message, sender, address, text, letter,
                                                                          free)
            except Rejected as exc:
                log.warning("outbox %d (%s) to %s refused on %s: %s", message.id, message.kind,
                            mask(message.msisdn), channel, exc.reason)
                refusal = f"refused: {exc.reason}"
                if isinstance(exc, PartRejected) and exc.taken > 0 and exc.rest:
                    # The customer read the first parts on WhatsApp: the next channel brings the rest only.
                    log.info("outbox %d (%s) to %s: %d part(s) delivered on %s before the refusal; the rest goes on",
                             message.id, message.kind, mask(message.msisdn), exc.taken, channel)
                    text = self._continued(message.language, list(exc.rest))
                    sms_parts = list(range(exc.taken, exc.taken + len(exc.rest)))
                continue
            except BackendUnavailable as exc:
                return self._retry(message, now, f"{channel}: {exc}")
            # Kept sealed where a late "outside the window" may still send it by SMS: on WhatsApp, and by SMS from a
            # later part on (an earlier part WhatsApp took may still be reported undelivered: SMS brings it then).
            in_part = channel == "sms" and bool(sms_parts) and min(sms_parts or [0]) > 0
            self.queue.sent(message.id, channel=channel, message_id=str(result.message_id), now=self.clock(),
                            keep_sealed=(channel in _KEPT_ON or in_part) and message.sealed is not None,
                            template_next=instead_of_template,
                            sms_parts=sms_parts if in_part else None)
            log.info("outbox %d (%s) sent to %s by %s", message.id, message.kind, mask(message.msisdn), channel)
            return "sent"
        if refusal.startswith("no sender"):
            return self._retry(message, now, refusal)
        self.queue.failed(message.id, error=refusal)
        return "failed"

    def _rest_of(self, message: ClaimedMessage, text: str) -> str:
        """The parts ``SMS_PARTS`` of the message, as the WhatsApp sender that sent it cut it, opened by the words
        saying it continues; the whole text when that sender is gone (better twice than not at all)."""
        provider = str(message.payload.get(REPLY_PROVIDER) or "")
        sender = self.reply_senders.get(provider) if provider else self.senders.get("whatsapp")
        if not isinstance(sender, PartTexts):
            return text
        texts = sender.part_texts(text, self._letter(message))
        wanted = [texts[i] for i in message.payload[SMS_PARTS] if isinstance(i, int) and 0 <= i < len(texts)]
        if not wanted:
            return text
        if len(wanted) == len(texts):
            return text
        # An earlier part WhatsApp reported undelivered after the rest went by SMS begins the message: no "(suite)".
        return "\n".join(wanted) if 0 in message.payload[SMS_PARTS] else self._continued(message.language, wanted)

    def _continued(self, language: str, texts: list[str]) -> str:
        """``texts`` (the end of a message) opened by "(suite)" / "(continued)" in ``language``."""
        words = self.labels.get(CONTINUED, {})
        default = self.templates.default_language
        label = (words.get(language) or _CONTINUED_WORDS.get(language) or words.get(default)
                 or _CONTINUED_WORDS.get(default) or _CONTINUED_WORDS["en"])
        return f"{label} " + "\n".join(texts)

    def _send_free_or_template(self, message: ClaimedMessage, sender: SmsSender, address: str, text: str,
                               letter: Letter | None, free: bool) -> tuple[Any, bool]:
        """Hand the message to ``sender``: as free text when ``free``, and then, if the provider says the window
        was closed after all, as the letter's template, once; its refusal is the caller's. Returns the
        provider's answer and whether free text went in place of the template."""
        if letter is None:
            return sender.send(address, text), False
        assert isinstance(sender, LetterSender)
        if not free:
            return sender.send_letter(address, text, letter), False
        try:
            return sender.send_letter(address, text, replace(letter, template=None)), True
        except Rejected as exc:
            if exc.reason not in self.window_closed:
                raise
            log.info("outbox %d (%s) to %s: free text refused outside the 24-hour window (%s); sent as its template",
                     message.id, message.kind, mask(message.msisdn), exc.reason)
            return sender.send_letter(address, text, letter), False

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
