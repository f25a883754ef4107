"""WhatsApp through Meta's Cloud API: ``GET|POST /whatsapp/meta``, signed JSON events in, Graph API
messages out.

``GET`` is Meta's subscription check: ``hub.mode=subscribe``, ``hub.verify_token`` (ours,
``META_VERIFY_TOKEN``) and ``hub.challenge``, answered with the challenge itself. ``POST`` carries
events (``entry[].changes[].value``): ``messages[]`` from customers and ``statuses[]`` about ours,
signed in ``X-Hub-Signature-256`` (``sha256=`` + hex HMAC-SHA256 of the raw body under the app
secret, ``META_APP_SECRET``), checked in constant time before the body is read as JSON. A secret or
the access token missing: the endpoint is closed (403/503), never open. A forged signature: 403,
nothing runs, ``gateway_refused`` audited.

A message is a ``Turn``: the sender's ``wa_id`` is where to answer and whose session it is, and,
signed by Meta, the number (``+`` and the digits) is who the customer is. Text is the input; a
tapped reply button or list row (``interactive.button_reply`` / ``list_reply``) or template button
(``button.payload``) carries the option key it was made for (``opt:2`` -> ``2``). Anything else
(a picture, a voice note) is answered with a notice asking for text; a reaction gets no answer, but opens the customer's
24-hour window with the number written to as any message does, unlike a ``system`` message that WhatsApp writes itself
(a customer changed number: ``_note_window`` cites the documentation).

The reply is not the webhook's answer: each message goes out as its own Graph API POST
(``backend_clients.meta_whatsapp``), laid out by ``graph_messages``: a screen with at most 3
choices (its options and Back/Home) as reply buttons (titles of 20 characters at most), at most 10
as a list (row titles of 24, descriptions of 72), anything else, an end or a paged screen as text.

A failed send is not lost. The answer to each message id is kept in the answer ledger with how many
of its messages went out; if the Graph API cannot take one now, the webhook answers ``503`` and Meta
delivers the event again later (it retries an unacknowledged webhook for days, with backoff): the
ledger then sends what is missing, without running the hop a second time, and a message already
answered and sent is acknowledged at once. Meta keeps the queue; ours keeps the answers. The ledger
keeps them for the 24-hour customer-service window, past which a free-form reply could not be sent.
A message the engine could not run now (the conversation busy, the session store down: a ``transient``
reply) is kept for the worker (``channels/sms_inbox.py``), which answers it later through the outbox (a
``whatsapp_reply``: the same messages, buttons or list included, ``messages``, through the Graph API from the
number the customer wrote to, ``phone_number_id``), and the event is acknowledged: Meta's redeliveries back off for
hours; the sender's newer messages (and Meta's redeliveries) are kept behind it while it waits, answered in order.
Only such a
message that cannot even be kept (the database down too), and an unexpected error, are answered ``503``,
nothing sent: Meta's redelivery runs the hop then. A request that is not a signed Meta event keeps its 4xx
(Meta sending it again would not help).
``statuses[]`` update the outbox's delivery status like Twilio's status callbacks (the worker's
notifications through Meta: ``app/whatsapp_letters.py``). A reply sent here is recorded in the outbox too, once Meta
has its answer (``replies``: the sent ``whatsapp_reply`` with each message's id), so the database knows the message
answered (a redelivery after Redis restarted empty gets nothing again) and a status saying Meta could not deliver it
outside the 24-hour window sends it by SMS, as for the worker's replies (a status that came first is kept and applied
then). A message Meta refuses for good at once sends it and the rest of the reply by SMS through the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from flask import Blueprint, Response, jsonify, request

from engine import (
    ChannelCapabilities,
    Engine,
    LoggingSecurityAudit,
    Reply,
    SecurityAudit,
    SecurityEvent,
    Turn,
)
from engine.masking import mask

from .adapter import BadRequest, ChannelAdapter, KeyedBySender
from .answer_ledger import (
    AnswerLedger,
    Claim,
    DurableAnswers,
    MemoryAnswerLedger,
    answered_before,
    claim_message,
    release_claim,
)
from .msisdn import to_e164
from .reply_secrets import shows_secret
from .sms_delivery import DeliveryReport
from .sms_inbox import Inbox, KeptMessage, keep_for_worker, waits_behind
from .whatsapp import (
    CAPABILITIES,
    CHANNEL,
    DEFAULT_IDLE_SECONDS,
    MAX_INPUT_CHARS,
    TEXT_ONLY,
    WebhookReplies,
    Windows,
    clean_text,
    keep_sent_reply,
    key_of,
    note_window,
    option_id,
)

__all__ = ["PATH", "MessageSender", "MetaWhatsAppAdapter", "Unsupported", "as_seen", "graph_messages", "sign"]

log = logging.getLogger("channels.whatsapp_meta")

PATH: Final = "/whatsapp/meta"
LEDGER: Final = "whatsapp_meta"
PROVIDER: Final = "meta"
SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
MAX_BUTTONS: Final = 3
MAX_BUTTON_TITLE: Final = 20
MAX_ROWS: Final = 10
MAX_ROW_TITLE: Final = 24
MAX_ROW_DESCRIPTION: Final = 72
MAX_INTERACTIVE_BODY: Final = 1024
MAX_MESSAGES_PER_EVENT: Final = 50
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:=+/\-]{1,256}$")
_WA_ID = re.compile(r"^[1-9][0-9]{5,14}$")
_PHONE_NUMBER_ID = re.compile(r"^[0-9]{1,32}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_STATUS = re.compile(r"^[a-z_]{1,24}$")
_IGNORED_TYPES: Final = frozenset({"reaction", "system", "ephemeral", "request_welcome"})
# Messages WhatsApp itself writes (a customer changed number): they open no customer-service window.
_NOT_FROM_CUSTOMER: Final = frozenset({"system"})


class MessageSender(Protocol):
    def deliver(self, phone_number_id: str, to: str, message: dict[str, Any]) -> str | None:
        """Send one message: its id when taken, ``None`` when refused for good (outside the 24-hour
        window, not a WhatsApp number); raises when it cannot be taken now (worth another try)."""


class Unsupported(BadRequest):
    """A well-formed message of a kind the channel does not read (media, location): ``wa_id`` is
    who sent it, to be told to write instead."""

    def __init__(self, wa_id: str, kind: str) -> None:
        super().__init__(f"message type {kind!r} is not read")
        self.wa_id = wa_id


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body, "preview_url": False}}


def _row(key: str, label: str) -> dict[str, str]:
    short = label if len(label) <= MAX_ROW_TITLE else label[:MAX_ROW_TITLE - 1].rstrip() + "…"
    row = {"id": option_id(key), "title": short}
    if len(label) > MAX_ROW_TITLE:
        row["description"] = label[:MAX_ROW_DESCRIPTION]
    return row


def graph_messages(reply: Reply, list_label: str = "Menu") -> list[dict[str, Any]]:
    """The reply as Graph API messages (without ``to``). Up to 3 options: reply buttons, Back and
    Home filling the buttons left; up to 10: a list, Back and Home as its last rows while they fit.
    Back or Home without room stay keys to type, said under the body. Anything else is text."""
    screen = reply.screen
    if screen is None or screen.end or reply.pages > 1 or not (screen.options or screen.nav):
        return [_text(reply.text)]
    body = "\n".join(([screen.error] if screen.error else []) + list(screen.blocks)).strip()
    options, nav = list(screen.options), list(screen.nav)
    as_buttons = len(options) <= MAX_BUTTONS and all(len(o.label) <= MAX_BUTTON_TITLE for o in options + nav)
    room = MAX_BUTTONS if as_buttons else MAX_ROWS
    if not body or len(options) > room:
        return [_text(reply.text)]
    shown = options + nav[:max(0, room - len(options))]
    typed = nav[len(shown) - len(options):]
    if typed:
        body += "\n" + " ".join(f"{o.key}. {o.label}" for o in typed)
    if len(body) > MAX_INTERACTIVE_BODY:
        return [_text(reply.text)]
    if as_buttons:
        buttons = [{"type": "reply", "reply": {"id": option_id(o.key), "title": o.label}} for o in shown]
        return [{"type": "interactive", "interactive": {"type": "button", "body": {"text": body},
                                                        "action": {"buttons": buttons}}}]
    return [{"type": "interactive", "interactive": {
        "type": "list", "body": {"text": body},
        "action": {"button": list_label[:MAX_BUTTON_TITLE],
                   "sections": [{"rows": [_row(o.key, o.label) for o in shown]}]}}}]


def as_seen(message: Mapping[str, Any]) -> str:
    """One Graph API message as the phone shows it (the flow simulator's view): its text; reply buttons in
    brackets, each with the key a tap sends (``[1: Latest bills]``); a list under its button, a row a line."""
    if message["type"] == "text":
        return str(message["text"]["body"])
    shown, action = message["interactive"], message["interactive"]["action"]
    taps = ([(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]] if shown["type"] == "button"
            else [(r["id"], r["title"]) for part in action["sections"] for r in part["rows"]])
    keys = [(tap_id.removeprefix("opt:"), title) for tap_id, title in taps]
    if shown["type"] == "button":
        return shown["body"]["text"] + "\n" + " ".join(f"[{key}: {title}]" for key, title in keys)
    return "\n".join([shown["body"]["text"], f"[{action['button']}]", *(f"- {key}: {title}" for key, title in keys)])


@dataclass(frozen=True, slots=True)
class _Event:
    """One signed webhook POST: its messages (with the number they were sent to) and status updates."""

    messages: list[tuple[str, Mapping[str, Any]]]
    statuses: list[DeliveryReport]


def _dicts(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise BadRequest("a list was expected")
    return [item for item in value if isinstance(item, dict)]


def read_event(raw: bytes) -> _Event:
    """The event's messages and statuses; ``BadRequest`` when the body is not a Meta event."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not JSON") from None
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise BadRequest("not a whatsapp_business_account event")
    messages: list[tuple[str, Mapping[str, Any]]] = []
    statuses: list[DeliveryReport] = []
    for entry in _dicts(payload.get("entry")):
        for change in _dicts(entry.get("changes", [])):
            value = change.get("value")
            if change.get("field", "messages") != "messages" or not isinstance(value, dict):
                continue
            metadata = value.get("metadata")
            number_id = str(metadata.get("phone_number_id", "")) if isinstance(metadata, dict) else ""
            if not _PHONE_NUMBER_ID.match(number_id):
                raise BadRequest("metadata.phone_number_id missing or malformed")
            messages += [(number_id, m) for m in _dicts(value.get("messages", []))]
            for status in _dicts(value.get("statuses", [])):
                report = _status(status)
                if report is not None:
                    statuses.append(report)
    if len(messages) + len(statuses) > MAX_MESSAGES_PER_EVENT:
        raise BadRequest("too many messages in one event")
    return _Event(messages, statuses)


def _status(status: Mapping[str, Any]) -> DeliveryReport | None:
    message_id, state, recipient = status.get("id"), status.get("status"), status.get("recipient_id")
    if not (isinstance(message_id, str) and _MESSAGE_ID.match(message_id) and isinstance(state, str)
            and _STATUS.match(state) and isinstance(recipient, str) and _WA_ID.match(recipient)):
        return None
    errors = status.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    reason = str(first.get("code", ""))[:20] or None
    return DeliveryReport(message_id, f"+{recipient}", state, reason)


@dataclass(frozen=True)
class MetaWhatsAppAdapter(KeyedBySender, ChannelAdapter):
    """Meta's WhatsApp webhook; ``sender`` posts replies to the Graph API, ``record_status`` keeps
    delivery updates (``True`` when one of our outbox messages has that id)."""

    app_secret: str = ""
    verify_token: str = ""
    sender: MessageSender | None = None
    record_status: Callable[[DeliveryReport], bool] | None = None
    default_region: str = "SN"
    security: SecurityAudit = field(default_factory=LoggingSecurityAudit)
    ledger: AnswerLedger = field(default_factory=MemoryAnswerLedger)
    idle_seconds: int = DEFAULT_IDLE_SECONDS
    on_reject: Callable[[], None] | None = None
    channel: str = CHANNEL
    prefix: str = PATH
    inbox: Inbox | None = None
    # Whether a message the ledger forgot (Redis restarted empty) was answered all the same: the database.
    answers: DurableAnswers | None = None
    windows: Windows | None = None      # when each customer last wrote (WhatsApp's 24-hour window)
    # The durable record of the replies sent here (the outbox's rows): what a status about them acts on, and where
    # the parts Meta refuses for good at once go by SMS.
    replies: WebhookReplies | None = None

    @property
    def capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def owns(self, path: str) -> bool:
        return path == PATH

    def turn_of(self, message: KeptMessage) -> Turn:
        """The turn of a kept message (``channels.sms_inbox.KeptChannel``): its text as the input read then (a
        tapped button's option key reads the same typed)."""
        return self.parse({"id": message.message_id, "from": message.sender.removeprefix("+"), "type": "text",
                           "text": {"body": message.text or ""}})

    def reply_text(self, reply: Reply) -> str:
        return reply.text

    def messages(self, engine: Engine, reply: Reply) -> list[dict[str, Any]]:
        """The reply as Graph API messages (``graph_messages``, the list's button in the screen's language): what
        the webhook sends, and what a late answer through the outbox sends (``app/whatsapp_letters.py``)."""
        label = engine.system_text(reply.screen.language if reply.screen else "", "choose")
        return graph_messages(reply, label)

    def reply_messages(self, engine: Engine, reply: Reply) -> list[Any]:
        return list(self.messages(engine, reply))

    def answered_elsewhere(self, message_id: str) -> bool:
        return self.ledger.recall(LEDGER, message_id) is not None

    def answered_later(self, message_id: str) -> None:
        # Its answer went through the outbox: Meta delivering the event again is acknowledged, nothing sent.
        self.ledger.keep(LEDGER, message_id, {"to": "", "from": "", "sent": 0, "messages": []})

    def parse(self, form: Mapping[str, Any]) -> Turn:
        """One element of ``messages[]`` as a ``Turn``."""
        message_id, wa_id, kind = form.get("id"), form.get("from"), form.get("type")
        if not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id):
            raise BadRequest("message id missing or malformed")
        if not isinstance(wa_id, str) or not _WA_ID.match(wa_id):
            raise BadRequest("from missing or not a WhatsApp id")
        customer = to_e164(f"+{wa_id}", self.default_region)
        if customer is None:
            raise BadRequest("from is not a phone number")
        text = self._input(form, kind, wa_id)
        return Turn(channel=CHANNEL, address=wa_id, customer=customer,
                    session_key=self.session_policy.key(CHANNEL, address=wa_id),
                    input=text, hop_id=message_id, entry="*")

    @staticmethod
    def _input(form: Mapping[str, Any], kind: object, wa_id: str) -> str:
        part = form.get(kind) if isinstance(kind, str) else None
        if not isinstance(part, dict):
            raise Unsupported(wa_id, str(kind)[:20]) if isinstance(kind, str) else BadRequest("type missing")
        if kind == "text":
            body = part.get("body")
            if not isinstance(body, str) or len(body) > MAX_INPUT_CHARS:
                raise BadRequest("text.body missing or too long")
            return clean_text(body)
        if kind == "interactive":
            if part.get("type") not in ("button_reply", "list_reply"):
                raise Unsupported(wa_id, f"interactive {str(part.get('type'))[:20]}")
            chosen = part.get(str(part.get("type")))
            if not isinstance(chosen, dict):
                raise BadRequest("interactive reply missing")
            button_id, title = chosen.get("id"), chosen.get("title", "")
            if not isinstance(button_id, str) or not isinstance(title, str) or len(button_id) > 256:
                raise BadRequest("interactive reply id missing or malformed")
            return key_of(button_id, title[:MAX_INPUT_CHARS])
        if kind == "button":
            payload, title = part.get("payload", ""), part.get("text", "")
            if not isinstance(payload, str) or not isinstance(title, str) or len(payload) > 256:
                raise BadRequest("button payload malformed")
            return key_of(payload, title[:MAX_INPUT_CHARS])
        raise Unsupported(wa_id, str(kind))

    def render(self, reply: Reply) -> str:
        return json.dumps(graph_messages(reply), ensure_ascii=False)

    def preview(self, reply: Reply) -> str:
        return "\n---\n".join(as_seen(m) for m in graph_messages(reply))

    def error_response(self, status: int = 400, headers: Mapping[str, str] | None = None) -> Response:
        words = {403: "forbidden", 413: "body too large", 405: "method not allowed", 503: "unavailable"}
        response = jsonify(error=words.get(status, "invalid event"))
        response.status_code = status
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def failure_response(self) -> Response:
        # Not Meta's fault: a 5xx, so Meta delivers the event again (a 4xx would drop it for good).
        return self.error_response(503, {"Retry-After": "30"})

    # ------------------------------------------------------------ endpoints
    def blueprint(self, engine: Engine) -> Blueprint:
        bp = Blueprint("whatsapp_meta", __name__)

        def refuse(reason: str) -> Response:
            log.warning("refused Meta WhatsApp request: %s", reason)
            self.security.record(SecurityEvent("gateway_refused", CHANNEL, subject=request.remote_addr or None,
                                               detail=f"meta webhook: {reason}"))
            if self.on_reject is not None:
                self.on_reject()
            return self.error_response(403)

        @bp.get(PATH)
        def verify() -> Response:
            args = request.args
            mode, token, challenge = (args.get("hub.mode", ""), args.get("hub.verify_token", ""),
                                      args.get("hub.challenge", ""))
            if not self.verify_token:
                log.error("META_VERIFY_TOKEN is not set: the subscription check is refused")
                return self.error_response(403)
            if mode != "subscribe" or not hmac.compare_digest(token.encode(), self.verify_token.encode()):
                return refuse("subscription check with a wrong verify token")
            if not _CHALLENGE.match(challenge):
                return self.error_response(400)
            return Response(challenge, mimetype="text/plain")

        @bp.post(PATH)
        def events() -> Response:
            if not self.app_secret or self.sender is None:
                log.error("Meta's app secret or access token is not configured: the WhatsApp webhook is closed")
                return self.error_response(503)
            raw = request.get_data(cache=True)   # over the app's limit: 413, answered by error_response
            signature = request.headers.get(SIGNATURE_HEADER, "")
            if not hmac.compare_digest(signature.encode(), sign(self.app_secret, raw).encode()):
                return refuse("bad or missing signature")
            try:
                event = read_event(raw)
            except BadRequest as exc:
                log.info("rejected Meta WhatsApp event: %s", exc)
                if self.on_reject is not None:
                    self.on_reject()
                return self.error_response(400)
            for report in event.statuses:
                self._record_status(report)
            # Every message is answered, even after one whose reply could not go out.
            sent_now: list[tuple[str, dict[str, Any]]] = []
            answered = [self._answer(engine, number_id, message, sent_now) for number_id, message in event.messages]
            # Meta delivers the event again later (the ledger sends what is missing then).
            response = jsonify(status="ok") if all(answered) else self.error_response(503)
            # After the replies went out, and after the answer to Meta (the server closes the response once sent):
            # neither waits for the database, however slow or unreachable (Meta would deliver the event again).
            def note_windows() -> None:
                for number_id, message in event.messages:
                    self._note_window(number_id, message)
                for message_id, record in sent_now:
                    self._record_sent(message_id, record)
            response.call_on_close(note_windows)
            return response

        return bp

    def _note_window(self, number_id: str, message: Mapping[str, Any]) -> None:
        """A message the customer sent (text, a tap, a picture, a reaction, a first opening of the chat) opens their
        24-hour window with our number ``number_id``, from the time Meta says they sent it (an event Meta delivers
        again hours later does not open it anew). A ``system`` message does not: WhatsApp wrote it, not the
        customer."""
        # Meta: "When a WhatsApp user messages you or calls you, a 24-hour timer called a customer service window
        # starts" (WhatsApp Business Platform, "Service messages", developers.facebook.com/documentation/
        # business-messaging/whatsapp/messages/send-messages#customer-service-windows). A reaction, or its removal,
        # comes in the messages webhook as a message from the user, its timestamp "when the customer sent the
        # reaction" (".../whatsapp/webhooks/reference/messages/reaction"); a Meta partner says outright that the API
        # takes it as the customer's answer that opens or renews the window (Omnichat, help.omni.chat/pt-BR/
        # articles/9077190-reacoes-a-mensagens-reacts). "The request_welcome webhook triggers a customer service
        # window" (".../whatsapp/cloud-api/phone-numbers/conversational-components", Welcome messages).
        # A system message is not the user messaging: WhatsApp tells us the user changed their number
        # (user_changed_number) or their user id (user_changed_user_id); its timestamp is "when the webhook was
        # triggered", and it carries no contacts (".../whatsapp/webhooks/reference/messages/system"). The old
        # number wrote nothing, and the new one has not written to us yet: no window opens for either.
        if message.get("type") in _NOT_FROM_CUSTOMER:
            return
        wa_id, stamp = message.get("from"), message.get("timestamp")
        customer = to_e164(f"+{wa_id}", self.default_region) if isinstance(wa_id, str) and _WA_ID.match(wa_id) \
            else None
        if customer is None:
            return
        sent_at = None
        if isinstance(stamp, str) and stamp.isdigit() and len(stamp) <= 12:
            sent_at = datetime.fromtimestamp(int(stamp), UTC)
        note_window(self.windows, customer, PROVIDER, sent_at, number_id)

    def _record_status(self, report: DeliveryReport) -> None:
        known = self.record_status(report) if self.record_status is not None else False
        log.info("whatsapp status %s for %s: %s%s", report.message_id[:24], mask(report.msisdn), report.status,
                 "" if known else " (not an outbox message)")

    def _answer(self, engine: Engine, number_id: str, message: Mapping[str, Any],
                sent_now: list[tuple[str, dict[str, Any]]]) -> bool:
        """Answer one message, once; ``False`` when a reply could not be sent now. A reply this call finished
        sending is added to ``sent_now`` (its message id and ledger record), to be recorded once Meta has its
        answer."""
        try:
            turn = self.parse(message)
        except Unsupported as exc:
            message_id = str(message.get("id", ""))
            if str(message.get("type")) in _IGNORED_TYPES or not _MESSAGE_ID.match(message_id):
                return True
            notice = self.ledger.recall(LEDGER, message_id) or {
                "to": exc.wa_id, "from": number_id, "sent": 0, "messages": [_text(TEXT_ONLY)], "text": TEXT_ONLY}
            return self._send_missing(message_id, notice, sent_now)
        except BadRequest as exc:
            # Signed by Meta but unreadable: sending the event again would not make it readable.
            log.info("unreadable WhatsApp message skipped: %s", exc)
            if self.on_reject is not None:
                self.on_reject()
            return True
        record = self.ledger.recall(LEDGER, turn.hop_id)
        if record is None and answered_before(self.ledger, self.answers, turn.hop_id):
            # Answered before the ledger forgot (its Redis restarted empty): the database says so. Acknowledged,
            # nothing sent again.
            log.info("whatsapp repost of a message answered before user=%s: nothing again", mask(turn.address))
            return True
        if record is not None:
            return self._send_missing(turn.hop_id, record, sent_now)
        claim = claim_message(self.ledger, self.answers, turn.hop_id, CHANNEL)
        if claim is Claim.TAKEN:
            # Answered by another delivery (just before Redis restarted empty): acknowledged, nothing sent.
            log.info("whatsapp copy of an answered message user=%s: nothing", mask(turn.address))
            return True
        if claim is Claim.BUSY:
            # Claimed, its answer not recorded: running now, or a run that ended owing its reply (its release refused
            # by a database down, its ledger record lost with Redis). Nothing sent now; Meta delivers it again, and
            # that delivery finds it answered, or takes the stale claim over and sends the reply.
            log.info("whatsapp copy of a message claimed and not answered yet user=%s: delivered again later",
                     mask(turn.address))
            return False
        if claim is Claim.UNSURE:
            return False    # nothing run: Meta delivers the event again
        try:
            answered = self._run(engine, turn, number_id, sent_now)
        except Exception:
            release_claim(self.answers, turn.hop_id)
            raise
        if not answered:
            release_claim(self.answers, turn.hop_id)    # Meta delivers it again: that delivery runs or sends it
        return answered

    def _run(self, engine: Engine, turn: Turn, number_id: str, sent_now: list[tuple[str, dict[str, Any]]]) -> bool:
        """``_answer`` for a message this delivery claimed."""
        if waits_behind(self.inbox, turn) and keep_for_worker(self.inbox, turn, text=turn.input or "",
                                                             provider=PROVIDER):
            return True     # run now, it would be answered before the sender's messages kept earlier
        reply = engine.handle(turn)
        if reply.transient:
            # Busy or the session store down: the hop did not run. Kept, the worker answers it; else Meta is
            # asked to deliver it again. A message saying "try again" would ask the customer to do either's job.
            return keep_for_worker(self.inbox, turn, text=turn.input or "", provider=PROVIDER, short_code=number_id)
        log.info("whatsapp hop user=%s node=%s end=%s", mask(turn.address),
                 reply.screen.node if reply.screen else "-", reply.end)
        if reply.replayed:
            # The engine's record of this very hop, and no ledger entry: another delivery of it is
            # being answered right now (or the ledger is unreachable). Sending here could send twice.
            log.info("whatsapp message answered by another delivery user=%s", mask(turn.address))
            return True
        record = {"to": turn.address, "from": number_id, "sent": 0, "messages": self.messages(engine, reply),
                  "text": reply.text, "language": reply.screen.language if reply.screen else "",
                  "plain": not shows_secret(engine.flows.menus, reply.screen)}
        return self._send_missing(turn.hop_id, record, sent_now)

    def _send_missing(self, message_id: str, record: dict[str, Any],
                      sent_now: list[tuple[str, dict[str, Any]]]) -> bool:
        """Send the messages of an answer not sent yet, counting each one (and keeping its id) in the ledger; an
        answer whose last message went now is added to ``sent_now``. A message Meta refuses for good sends it and
        the rest by SMS (``_rest_by_sms``)."""
        raw_messages, raw_sent, raw_ids = record.get("messages"), record.get("sent"), record.get("ids")
        messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
        sent = raw_sent if isinstance(raw_sent, int) else 0
        ids = [str(i) for i in raw_ids] if isinstance(raw_ids, list) else []
        to, number_id = str(record.get("to", "")), str(record.get("from", ""))
        assert self.sender is not None
        self.ledger.keep(LEDGER, message_id, record)
        for index in range(sent, len(messages)):
            try:
                taken = self.sender.deliver(number_id, to, messages[index])
            except Exception as exc:  # noqa: BLE001 - unreachable, throttled, 5xx: kept for Meta's next delivery
                log.warning("whatsapp reply to %s not sent now: %s", mask(to), type(exc).__name__)
                return False
            if taken is None:
                # Meta will not take it (outside the 24-hour window, number gone): retrying cannot help; SMS can.
                log.warning("whatsapp reply to %s refused for good at part %d of %d", mask(to), index + 1,
                            len(messages))
                if not self._rest_by_sms(message_id, record, index):
                    return False    # not queued (the database down): Meta's redelivery tries this part again
                record["sent"] = len(messages)
                self.ledger.keep(LEDGER, message_id, record)
                return True
            ids.append(taken)
            record["sent"], record["ids"] = index + 1, ids
            self.ledger.keep(LEDGER, message_id, record)
        if sent < len(messages):
            sent_now.append((message_id, record))
        return True

    def _record_sent(self, message_id: str, record: dict[str, Any]) -> None:
        """Keep in the database the reply that went out whole, after Meta has its answer (``keep_sent_reply``)."""
        keep_sent_reply(self.replies, self.answers, message_id, to=f"+{record.get('to', '')}",
                        language=str(record.get("language") or ""), text=str(record.get("text") or ""),
                        messages=list(record.get("messages") or []), ids=[str(i) for i in record.get("ids") or []],
                        provider=PROVIDER, from_number=str(record.get("from", "")), plain=record.get("plain") is True)

    def _rest_by_sms(self, message_id: str, record: dict[str, Any], refused: int) -> bool:
        """The messages from ``refused`` on of the answer ``record``, which Meta refused for good at once, handed to
        SMS as a refusal reported in a status hands them (``replies``: the outbox, "(suite)" after the parts the
        customer got, the reason kept for agents); ``False`` when they could not be queued now."""
        to, messages = str(record.get("to", "")), list(record.get("messages") or [])
        if self.replies is None:
            log.error("whatsapp reply to %s refused and no outbox to send it by SMS", mask(to))
            return True
        reason = f"whatsapp: part {refused + 1} of {len(messages)} refused for good by meta at once; sent by SMS"
        try:
            queued = self.replies.queue_rest_by_sms(
                f"+{to}", language=str(record.get("language") or ""), message_id=message_id,
                text=str(record.get("text") or ""), messages=messages, parts=range(refused, len(messages)),
                provider=PROVIDER, from_number=str(record.get("from", "")), reason=reason,
                plain=record.get("plain") is True)
        except Exception as exc:  # noqa: BLE001 - the database down: kept for Meta's redelivery
            log.warning("whatsapp reply to %s: not queued for SMS now: %s", mask(to), type(exc).__name__)
            return False
        log.warning("whatsapp reply to %s: parts %d-%d of %d go by SMS%s", mask(to), refused + 1, len(messages),
                    len(messages), "" if queued else " (queued already)")
        return True
