"""WhatsApp through Twilio: ``POST /whatsapp/twilio``, a signed form in, TwiML out.

Twilio posts each incoming WhatsApp message as a form (``MessageSid``, ``From`` ``whatsapp:+…``,
``Body``, ``WaId``, ``ProfileName``, ``ButtonPayload``/``ButtonText`` for a tapped quick reply,
``NumMedia``…) signed in ``X-Twilio-Signature``: base64 HMAC-SHA1, under the account's auth token,
of the URL Twilio called followed by every parameter's name and value in name order, checked with
the SDK's ``RequestValidator`` against the *public* URL (``TWILIO_WEBHOOK_URL`` + path: behind a
proxy the URL Flask sees is not the one Twilio signed). No token configured: the endpoint is
closed (503), never open. A forged or missing signature: 403, nothing runs, ``gateway_refused``
audited.

The ``whatsapp:`` address is where to answer and whose session it is; the E.164 number in it, which
Twilio vouches for by signing, is who the customer is. The answer is TwiML (``MessagingResponse``),
one ``<Message>`` per 1 600 characters (Twilio's cap on a body), cut between lines. A retried
``MessageSid`` gets the same TwiML from the answer ledger, however late, without a second step.
A message the engine could not run now (the session store down, the conversation busy past the lock wait: a
``transient`` reply) is kept for the worker (``channels/sms_inbox.py``), which answers it later through the
outbox (a ``whatsapp_reply``: the same bodies as the TwiML would have held, ``messages``, sent in order, through
Twilio from the number the customer wrote to, ``To``), and Twilio gets an empty ``<Response/>``: no "send it
again" message; the sender's newer messages (and Twilio's reposts) are kept behind it while it waits, answered in
order. When the
product fails otherwise (an unexpected error, or such a message cannot even be kept) the answer is still a
200 TwiML message asking the customer to send the message again in a few minutes: Twilio does not post a
webhook again by default, so a 5xx would leave the customer with no answer at all.
What the customer wrote (a PIN) is never logged or kept. A reply given in the TwiML is as safe as one Meta's adapter
sends: each ``<Message>`` asks Twilio to post its status to the signed status endpoint (``action``: ``status_url``
with an opaque reference of the reply's part, ``channels/twiml_refs.py``), and once the answer has gone the reply is
recorded in the outbox as a sent ``whatsapp_reply`` (``replies``: its text and bodies sealed, a screen showing no code
or token marked plain, each part known by its reference), so a later ``failed``/``undelivered`` status sends it by
SMS where the outbox's rules allow (outside the 24-hour window) and agents see it with its delivery status; the
database then also knows the message answered, and the same ``MessageSid`` posted again after Redis restarted empty
is not answered twice (without ``replies``: ``answers``, ``record_answered``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from flask import Blueprint, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

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
from .sms_inbox import Inbox, KeptMessage, keep_for_worker, waits_behind
from .twiml_refs import action_url, part_ids, reply_ref
from .whatsapp import (
    CAPABILITIES,
    CHANNEL,
    DEFAULT_IDLE_SECONDS,
    MAX_INPUT_CHARS,
    NOT_READABLE,
    TEXT_ONLY,
    UNAVAILABLE,
    WebhookReplies,
    Windows,
    clean_text,
    keep_sent_reply,
    key_of,
    note_window,
)

__all__ = ["MAX_BODY_CHARS", "PATH", "TwilioWhatsAppAdapter", "split_body"]

log = logging.getLogger("channels.whatsapp_twilio")

PATH: Final = "/whatsapp/twilio"
LEDGER: Final = "whatsapp_twilio"
PROVIDER: Final = "twilio"
MAX_BODY_CHARS: Final = 1600
# WhatsApp carries up to 4 096 characters: in Arabic script or emoji (up to 12 bytes each once
# form-encoded) with Twilio's other fields, a real message reaches ~50 KiB, past the app's 16 KiB.
MAX_REQUEST_BYTES: Final = 64 * 1024
SIGNATURE_HEADER: Final = "X-Twilio-Signature"
_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_FROM = re.compile(r"^whatsapp:\+[1-9][0-9]{5,14}$")
_WA_ID = re.compile(r"^[1-9][0-9]{5,14}$")
_TWIML: Final = "application/xml"


def split_body(text: str, limit: int = MAX_BODY_CHARS) -> list[str]:
    """``text`` as message bodies of at most ``limit`` characters, cut between lines (between words
    for a line longer than that)."""
    bodies: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            if current:
                bodies.append(current)
                current = ""
            bodies.append(line[:cut])
            line = line[cut:].lstrip(" ")
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
        else:
            bodies.append(current)
            current = line
    if current or not bodies:
        bodies.append(current)
    return bodies


def _our_number(form: Mapping[str, str]) -> str:
    """Our number the customer wrote to (``To``, ``whatsapp:+…``, signed with the rest): a late answer goes from it,
    not from whichever sender the notifications use."""
    to = (form.get("To") or "").strip()
    return to.removeprefix("whatsapp:") if _FROM.match(to) else ""


def _twiml(*bodies: str, actions: Sequence[str] = ()) -> str:
    """TwiML with a ``<Message>`` per body; ``actions``: where Twilio posts each one's status (by POST)."""
    response = MessagingResponse()
    for index, body in enumerate(bodies):
        if index < len(actions):
            response.message(body, action=actions[index], method="POST")
        else:
            response.message(body)
    return str(response)


@dataclass(frozen=True, slots=True)
class _Given:
    """A reply given in the TwiML, as the outbox records it once the answer has gone (``WebhookReplies``)."""

    message_id: str
    to: str
    language: str
    text: str
    bodies: list[str]
    ids: list[str]
    from_number: str
    plain: bool


@dataclass(frozen=True)
class TwilioWhatsAppAdapter(KeyedBySender, ChannelAdapter):
    """Twilio's WhatsApp webhook; ``webhook_url`` is the public base Twilio calls (signatures)."""

    auth_token: str = ""
    webhook_url: str = ""
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
    # The signed status endpoint's public URL (``channels/twilio_status.py``): each ``<Message>``'s ``action``.
    status_url: str = ""
    # The outbox, where a reply given in the TwiML is recorded as sent (its later statuses act on it).
    replies: WebhookReplies | None = None

    @property
    def capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def owns(self, path: str) -> bool:
        # The status callbacks under the same prefix have their own blueprint and answers.
        return path == PATH

    def parse(self, form: Mapping[str, str]) -> Turn:
        sid = (form.get("MessageSid") or "").strip()
        if not _SID.match(sid):
            raise BadRequest("MessageSid missing or malformed")
        address = (form.get("From") or "").strip()
        if not _FROM.match(address):
            raise BadRequest("From missing or not a whatsapp: number")
        customer = to_e164(address.removeprefix("whatsapp:"), self.default_region)
        if customer is None:
            raise BadRequest("From is not a phone number")
        wa_id = (form.get("WaId") or "").strip()
        if wa_id and (not _WA_ID.match(wa_id) or f"+{wa_id}" != customer):
            raise BadRequest("WaId does not match From")
        body = form.get("Body")
        if body is None:
            raise BadRequest("Body missing")
        payload = form.get("ButtonPayload") or ""
        if len(body) > MAX_INPUT_CHARS or len(payload) > 256:
            raise BadRequest(f"Body longer than {MAX_INPUT_CHARS} characters")
        # A tapped quick reply carries the option it stands for; anything else is what was typed.
        text = key_of(payload, form.get("ButtonText") or body) if payload else clean_text(body)
        return Turn(channel=CHANNEL, address=address, customer=customer,
                    session_key=self.session_policy.key(CHANNEL, address=address),
                    input=text, hop_id=sid, entry="*")

    def turn_of(self, message: KeptMessage) -> Turn:
        """The turn of a kept message (``channels.sms_inbox.KeptChannel``): its text as the input read then."""
        return self.parse({"MessageSid": message.message_id, "From": f"whatsapp:{message.sender}",
                           "Body": message.text or ""})

    def messages(self, reply: Reply) -> list[str]:
        """The reply as Twilio message bodies: the TwiML answer's ``<Message>`` elements, and the messages a late
        answer sends through the REST API (``app/whatsapp_letters.py``), one layout for both."""
        return split_body(reply.text)

    def render(self, reply: Reply) -> str:
        return _twiml(*self.messages(reply))

    def preview(self, reply: Reply) -> str:
        # The message bodies, not the TwiML that carries them.
        return "\n---\n".join(self.messages(reply))

    def reply_text(self, reply: Reply) -> str:
        return reply.text

    def reply_messages(self, engine: Engine, reply: Reply) -> list[Any]:
        return list(self.messages(reply))

    def answered_elsewhere(self, message_id: str) -> bool:
        known = self.ledger.recall(LEDGER, message_id)
        return known is not None and isinstance(known.get("twiml"), str)

    def answered_later(self, message_id: str) -> None:
        # Its answer went through the outbox: the same MessageSid posted again gets an empty TwiML.
        self.ledger.keep(LEDGER, message_id, {"twiml": _twiml()})

    def error_response(self, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A readable sender gets a bilingual notice (status 200, so Twilio delivers it); a refused or
        unreadable request gets an empty ``<Response/>`` with its status."""
        body = _twiml(NOT_READABLE) if status == 200 else _twiml()
        return Response(body, status=status, mimetype=_TWIML, headers=dict(headers or {}))

    def failure_response(self) -> Response:
        """Twilio does not post a message again unless its webhook URL asks for retries (and a 5xx would then
        only add its own error to the customer's log): the customer is told, in a 200, to send it again."""
        return Response(_twiml(UNAVAILABLE), mimetype=_TWIML)

    def blueprint(self, engine: Engine) -> Blueprint:
        bp = Blueprint("whatsapp_twilio", __name__)
        validator = RequestValidator(self.auth_token) if self.auth_token else None

        def refuse(reason: str) -> Response:
            log.warning("refused Twilio WhatsApp webhook: %s", reason)
            self.security.record(SecurityEvent("gateway_refused", CHANNEL, subject=request.remote_addr or None,
                                               detail=f"twilio webhook: {reason}"))
            if self.on_reject is not None:
                self.on_reject()
            return self.error_response(403)

        @bp.post(PATH)
        def incoming() -> Response:
            if validator is None:
                log.error("TWILIO_AUTH_TOKEN is not set: the WhatsApp webhook is closed")
                return self.error_response(503)
            # A body over this limit raises 413 here: the factory answers it with ``error_response``.
            request.max_content_length = MAX_REQUEST_BYTES
            form = request.form.to_dict()
            url = self.webhook_url + PATH + (f"?{request.query_string.decode('latin-1')}"
                                             if request.query_string else "")
            if not validator.validate(url, form, request.headers.get(SIGNATURE_HEADER, "")):
                return refuse("bad or missing signature")
            try:
                turn = self.parse(form)
            except BadRequest as exc:
                log.info("rejected Twilio WhatsApp message: %s", exc)
                if self.on_reject is not None:
                    self.on_reject()
                # Someone we can answer gets a notice; a request without a sender gets nothing.
                readable = bool(_FROM.match((form.get("From") or "").strip()))
                return self.error_response(200 if readable else 400)
            # The window is with the number written to (``To``), not with every number of the account.
            customer, ours = turn.customer or "", _our_number(form)
            try:
                response, given = self._answer(engine, turn, form)
            except Exception:
                note_window(self.windows, customer, PROVIDER, number=ours)
                raise

            def noted() -> None:
                note_window(self.windows, customer, PROVIDER, number=ours)
                if given is not None:   # the durable record a repost finds once Redis forgot (``answered_before``)
                    self._record(given)
            # Once the answer has gone (the server closes the response after sending it): the reply is Twilio's
            # answer, and must not wait for the database, however slow or unreachable it is.
            response.call_on_close(noted)
            return response

        return bp

    def _answer(self, engine: Engine, turn: Turn, form: Mapping[str, str]) -> tuple[Response, _Given | None]:
        """The TwiML answer to one signed, readable message, and the reply it gives when it is one run and given now
        (not a repost's answer, nor a message kept for the worker, whose reply the outbox records)."""
        if not turn.input and (form.get("NumMedia") or "0").strip() not in ("", "0"):
            # A picture or a voice note without words: nothing to answer but a request for text.
            return Response(_twiml(TEXT_ONLY), mimetype=_TWIML), None
        known = self.ledger.recall(LEDGER, turn.hop_id)
        if known is not None and isinstance(known.get("twiml"), str):
            log.info("whatsapp retry of an answered message user=%s: same answer", mask(turn.address))
            return Response(known["twiml"], mimetype=_TWIML), None
        if known is None and answered_before(self.ledger, self.answers, turn.hop_id):
            # Answered before the ledger forgot (its Redis restarted empty): the database says so. Its answer
            # went then; nothing again.
            log.info("whatsapp repost of a message answered before user=%s: nothing again", mask(turn.address))
            return Response(_twiml(), mimetype=_TWIML), None
        claim = claim_message(self.ledger, self.answers, turn.hop_id, CHANNEL)
        if claim in (Claim.TAKEN, Claim.BUSY):
            # Another delivery of it runs now, or ran just before Redis restarted empty: answered by that one (Twilio
            # posts nothing again: an answer asking to send it again would be a second reply if that one answers).
            log.info("whatsapp copy of a message claimed already user=%s: nothing", mask(turn.address))
            return Response(_twiml(), mimetype=_TWIML), None
        if claim is Claim.UNSURE:
            return self.failure_response(), None
        try:
            return self._run(engine, turn, form)
        except Exception:
            release_claim(self.answers, turn.hop_id)
            raise

    def _run(self, engine: Engine, turn: Turn, form: Mapping[str, str]) -> tuple[Response, _Given | None]:
        """``_answer`` for a message this delivery claimed."""
        if waits_behind(self.inbox, turn) and keep_for_worker(self.inbox, turn, text=turn.input or "",
                                                             provider=PROVIDER):
            # Run now, it would be answered before the sender's messages kept earlier: kept behind them.
            return Response(_twiml(), mimetype=_TWIML), None
        reply = engine.handle(turn)
        if reply.transient:
            # Busy or the session store down: the hop did not run. Kept, the worker answers it through the
            # outbox; a "send it again" message would ask the customer to do what the worker does.
            if keep_for_worker(self.inbox, turn, text=turn.input or "", provider=PROVIDER,
                               short_code=_our_number(form)):
                return Response(_twiml(), mimetype=_TWIML), None
            release_claim(self.answers, turn.hop_id)     # the customer is asked to send it again
            return self.failure_response(), None
        bodies = self.messages(reply)
        # The reference is the message's: a replayed hop's TwiML names the record the first answer made.
        ref = reply_ref(self.auth_token, turn.hop_id)
        ids = part_ids(ref, len(bodies))
        twiml = _twiml(*bodies, actions=[action_url(self.status_url, ref, part) for part in range(len(bodies))]
                       if self.status_url else ())
        log.info("whatsapp hop user=%s node=%s end=%s", mask(turn.address),
                 reply.screen.node if reply.screen else "-", reply.end)
        if reply.replayed:
            return Response(twiml, mimetype=_TWIML), None
        self.ledger.keep(LEDGER, turn.hop_id, {"twiml": twiml})
        return Response(twiml, mimetype=_TWIML), _Given(
            turn.hop_id, turn.customer or "", reply.screen.language if reply.screen else "", reply.text, bodies, ids,
            _our_number(form), not shows_secret(engine.flows.menus, reply.screen))

    def _record(self, given: _Given) -> None:
        """Keep in the database the reply that went in the TwiML (``keep_sent_reply``)."""
        keep_sent_reply(self.replies, self.answers, given.message_id, to=given.to, language=given.language,
                        text=given.text, messages=given.bodies, ids=given.ids, provider=PROVIDER,
                        from_number=given.from_number, plain=given.plain)
