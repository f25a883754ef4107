"""WhatsApp notifications: the ``LetterSender`` the dispatcher uses for the ``whatsapp`` channel, through
Meta's Cloud API or through Twilio, and what each provider's delivery statuses do to the outbox.

WhatsApp delivers free text only inside the 24-hour customer-service window; an approved template at any
time. So a kind that has a template (``whatsapp_template`` in ``config/notifications.yaml``: outage alerts,
power back ...) goes as that template, filled from its payload, in the message's language: an alert reaches
a customer who has not written for days. Inside the window (the customer wrote lately:
``storage/whatsapp_windows.py``) the dispatcher sends its free text instead (a letter without its template),
which says more and which Meta does not bill; refused as outside the window after all (``WINDOW_CLOSED``), at
once or in a later status, it goes again as the template, once. Through Meta the template is its name and language; through Twilio
it is a Content SID per name and language (``TWILIO_CONTENT_SIDS``): a template without one in that language
goes through Twilio as free text, as a kind without a template does (the customer is usually in a
conversation with us: a receipt or a code they just asked for).

Free text outside the window is refused: by Meta with code ``131047``, by Twilio with ``63016``. Either may
say so at once (``Rejected``: the dispatcher sends the message by SMS) or, usually, take the message and say
so later in a status (Meta's ``statuses[]``, Twilio's status callback, ``failed``/``undelivered``): the row
is then sent again by SMS, once (``whatsapp_status_recorder``), also when that status arrives before the
worker has recorded the send (the decision is kept with the report and applied then).

Free text longer than one message holds (Twilio 1 600 characters, Meta 4 096) goes as several, cut between
lines, in order, never cut short. The worker's answer to a WhatsApp message it ran late (``whatsapp_reply``)
carries the screen as the adapter of the provider it came through laid it out (``Letter.messages``: the
bodies of Twilio's TwiML, Meta's buttons or list), so it reads as the webhook's answer would have. A message
in several parts is sent once per part (``send_in_parts``): the outbox row keeps the parts taken, and a retry
sends the others only. Such a reply goes through the provider it came through only (the dispatcher picks that
provider's sender: ``Dispatcher.reply_senders``), from our number the customer wrote to (``Letter.from_number``:
Twilio's ``To``, Meta's phone number id), else from the provider's configured number.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from backend_clients.africastalking_sms import SentSms
from backend_clients.meta_notifier import MAX_TEXT_CHARS as META_MAX_TEXT_CHARS
from backend_clients.meta_notifier import OUTSIDE_WINDOW as META_OUTSIDE_WINDOW
from backend_clients.meta_notifier import MetaWhatsAppNotifier
from backend_clients.meta_whatsapp import SentMessage
from backend_clients.twilio_whatsapp import MAX_BODY_CHARS as TWILIO_MAX_BODY_CHARS
from backend_clients.twilio_whatsapp import OUTSIDE_WINDOW as TWILIO_OUTSIDE_WINDOW
from backend_clients.twilio_whatsapp import TwilioWhatsApp
from channels.sms_delivery import DeliveryReport
from channels.whatsapp_meta import PROVIDER as META
from channels.whatsapp_twilio import PROVIDER as TWILIO
from channels.whatsapp_twilio import split_body
from dialogs.backends import Rejected

from .notify import Letter, NotificationTemplates, PartRejected
from .storage.delivery import SqlDeliveryQueue, delivery_status

__all__ = ["WINDOW_CLOSED", "MetaWhatsAppLetters", "TwilioWhatsAppLetters", "content_sid_problems",
           "meta_status_recorder", "send_in_parts", "twilio_status_recorder", "whatsapp_status_recorder"]

# The senders' refusals (``Rejected.reason``) of free text outside the 24-hour window: the dispatcher then
# sends the kind's template instead, once.
WINDOW_CLOSED: Final = frozenset({f"meta_{META_OUTSIDE_WINDOW}", f"twilio_{TWILIO_OUTSIDE_WINDOW}"})



_Part = TypeVar("_Part")


def send_in_parts(parts: Sequence[_Part], letter: Letter | None, send_one: Callable[[_Part], str],
                  text_of: Callable[[_Part], str] = str) -> str:
    """Send ``parts`` in order, each once, and return the first one's provider id (the one the outbox row
    keeps: a window closed fails the first part first). The parts the provider took on an earlier try
    (``letter.parts_sent``) are not sent again; each new one is recorded as soon as it is taken
    (``letter.progress``), so a part refused for now (``BackendUnavailable``) is where the retry starts. A worker
    that dies between a part's send and its record sends that one part again, never the others. A later part
    refused for good raises ``PartRejected`` with the texts of the parts not taken (``text_of`` each): the
    customer has read the first ones, and SMS brings only the rest."""
    sent = list(letter.parts_sent[:len(parts)]) if letter is not None else []
    record = letter.progress if letter is not None and len(parts) > 1 else None
    if record is not None and not sent:
        # Marked as sent in parts before the first: a worker dying now leaves a row whose recovery does not take
        # one part's delivery report for the whole message.
        record([])
    for part in parts[len(sent):]:
        try:
            sent.append(send_one(part))
        except Rejected as exc:
            if not sent:
                raise
            raise PartRejected(exc.reason, exc.code, len(sent), tuple(text_of(p) for p in parts[len(sent):])) \
                from None
        if record is not None:
            record(sent)
    return sent[0]


class MetaWhatsAppLetters:
    """Meta's sender. A reply laid out by Meta's adapter (``Letter.messages``: text, buttons or a list) goes as
    those messages, in order, from the phone number id the customer wrote to (``Letter.from_number``); any other
    text as text messages of at most 4 096 characters, cut between lines."""

    def __init__(self, notifier: MetaWhatsAppNotifier) -> None:
        self._notifier = notifier

    def send(self, to: str, text: str) -> SentMessage:
        return self._send_messages(to, _meta_texts(text), None, "")

    def send_letter(self, to: str, text: str, letter: Letter) -> SentMessage:
        template = letter.template
        if template is not None:
            return self._notifier.send_template(to, template.name, template.language, template.params)
        ours = letter.provider == META
        laid_out = [m for m in letter.messages if isinstance(m, dict)] if ours else []
        return self._send_messages(to, laid_out or _meta_texts(text), letter, letter.from_number if ours else "")

    def part_texts(self, text: str, letter: Letter) -> list[str]:
        """``notify.PartTexts``: the text of each message ``send_letter`` sends as free text for ``letter``."""
        ours = letter.provider == META
        laid_out = [m for m in letter.messages if isinstance(m, dict)] if ours else []
        return [_graph_text(m) for m in laid_out or _meta_texts(text)]

    def _send_messages(self, to: str, messages: Sequence[dict[str, Any]], letter: Letter | None,
                       number: str) -> SentMessage:
        return SentMessage(send_in_parts(
            messages, letter, lambda message: self._notifier.send_message(to, message, number).message_id,
            _graph_text))


def _graph_text(message: dict[str, Any]) -> str:
    """What a Graph API message says, as SMS can say it: a text's body, an interactive message's body."""
    part = message.get(str(message.get("type")))
    body = part.get("body") if isinstance(part, dict) else None
    if isinstance(body, dict):      # interactive: {"body": {"text": ...}}
        body = body.get("text")
    return body if isinstance(body, str) else ""


def _meta_texts(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"body": body, "preview_url": False}}
            for body in split_body(text, META_MAX_TEXT_CHARS)]


class TwilioWhatsAppLetters:
    """Twilio's sender with the Content SIDs of the approved templates, by (template name, language). Free
    text goes as bodies of at most 1 600 characters (Twilio's cap), laid out as Twilio's webhook answer lays
    out a screen (``split_body``: cut between lines), or as the bodies Twilio's adapter made of a reply
    (``Letter.messages``), in order, from our number the customer wrote to (``Letter.from_number``); never cut
    short."""

    def __init__(self, sender: TwilioWhatsApp, content_sids: Iterable[tuple[str, str, str]] = ()) -> None:
        self._sender = sender
        self._sids: Mapping[tuple[str, str], str] = {(name, lang): sid for name, lang, sid in content_sids}

    def send(self, to: str, text: str) -> SentSms:
        return self._send_bodies(to, split_body(text, TWILIO_MAX_BODY_CHARS), None, "")

    def send_letter(self, to: str, text: str, letter: Letter) -> SentSms:
        template = letter.template
        sid = self._sids.get((template.name, template.language)) if template is not None else None
        if template is not None and sid is not None:
            return self._sender.send_template(to, sid, template.params)
        ours = letter.provider == TWILIO
        laid_out = [m for m in letter.messages if isinstance(m, str)] if ours else []
        return self._send_bodies(to, laid_out or split_body(text, TWILIO_MAX_BODY_CHARS), letter,
                                 letter.from_number if ours else "")

    def part_texts(self, text: str, letter: Letter) -> list[str]:
        """``notify.PartTexts``: the body of each message ``send_letter`` sends as free text for ``letter``."""
        ours = letter.provider == TWILIO
        laid_out = [m for m in letter.messages if isinstance(m, str)] if ours else []
        return laid_out or split_body(text, TWILIO_MAX_BODY_CHARS)

    def _send_bodies(self, to: str, bodies: Sequence[str], letter: Letter | None, number: str) -> SentSms:
        first = send_in_parts(bodies, letter, lambda body: self._sender.send(to, body, number).message_id)
        return SentSms(first, "queued")


def content_sid_problems(templates: NotificationTemplates, languages: Collection[str],
                         content_sids: Iterable[tuple[str, str, str]]) -> list[str]:
    """What an operator sending through Twilio has not configured: each template of the notifications
    without a Content SID in one of ``languages`` (that kind then goes as free text, refused outside the
    window and sent by SMS), and each Content SID no template uses (a typo in its name)."""
    configured = {(name, lang) for name, lang, _ in content_sids}
    used = {spec.whatsapp_template[0] for spec in templates.kinds.values() if spec.whatsapp_template}
    problems = [f"WhatsApp template '{name}' has no Twilio Content SID for '{lang}' (TWILIO_CONTENT_SIDS): "
                f"sent as free text, by SMS outside the 24-hour window"
                for name in sorted(used) for lang in languages if (name, lang) not in configured]
    problems += [f"TWILIO_CONTENT_SIDS names '{name}', which no notification uses as its whatsapp_template"
                 for name in sorted({n for n, _ in configured} - used)]
    return problems


def whatsapp_status_recorder(queue: SqlDeliveryQueue, provider: str,
                             outside_window: Callable[[DeliveryReport], bool]) -> Callable[[DeliveryReport], bool]:
    """A WhatsApp provider's delivery statuses applied to the outbox, as any delivery report; a notification
    the provider could not deliver because the customer's 24-hour window was closed is sent again by SMS
    (with its sealed code or token, kept for that: ``SqlDeliveryQueue.record_report``)."""
    def record(report: DeliveryReport) -> bool:
        again = None
        if delivery_status(report.status) == "failed" and outside_window(report):
            again = (f"whatsapp: not delivered, outside the 24-hour window ({provider} {report.failure_reason}); "
                     "sent again by SMS")
        return queue.record_report(provider=provider, message_id=report.message_id, msisdn=report.msisdn,
                                   status=report.status, failure_reason=report.failure_reason, sms_again=again)
    return record


def meta_status_recorder(queue: SqlDeliveryQueue) -> Callable[[DeliveryReport], bool]:
    """Meta's ``statuses[]``: ``failed`` with error ``131047`` is outside the window."""
    return whatsapp_status_recorder(queue, "meta", lambda r: r.failure_reason == META_OUTSIDE_WINDOW)


def twilio_status_recorder(queue: SqlDeliveryQueue) -> Callable[[DeliveryReport], bool]:
    """Twilio's status callbacks: ``undelivered`` or ``failed`` with ``ErrorCode`` 63016 is outside the window."""
    return whatsapp_status_recorder(queue, "twilio", lambda r: r.failure_reason == TWILIO_OUTSIDE_WINDOW)
