"""Africa's Talking incoming SMS: keyword commands through the engine, replies through the SMS API.

``POST /sms/africastalking`` takes the provider's form (``from``, ``to``, ``text``, ``date``,
``id``, ``linkId``, ``networkCode``), authenticated by the same ``GatewayGuard`` (Africa's
Talking token) as the USSD callback. A conversation is keyed by sender on this channel and
lasts until it has been idle for ``idle_seconds``; its first message is a command
(``SOLDE``, ``PAYER 5000`` ...) that starts it, later ones answer its screens.

The HTTP answer to the callback is not the reply: the reply goes out through ``ReplySender``
(the official SDK, ``backend_clients.africastalking_sms``), at most three SMS parts counted with
the GSM-7/UCS-2 rules. A reply the provider cannot take now is not lost: it is handed to the
notification outbox and the worker sends it (``sms_handover``). A provider retry of the same message
``id`` gets the engine's recorded answer, which is not sent again (unless it could be neither sent nor
queued the first time). What the customer wrote (a PIN in ``OUI 1234``) is never logged. Before a message
runs it is claimed in the database (``answer_ledger.claim_message``), and once its reply is handed over its claim is
marked answered (``record_answered``, whichever way the reply went): a copy posted after that, also after Redis
restarted empty, is answered ``200`` and runs nothing; one posted while the claim is unanswered (running now, or a
run that ended owing its reply) is answered ``503``, and the provider's later post finds it answered, or takes the
stale claim over and sends the reply.

A message the engine could not run now (the session store down, or the conversation busy: the engine's
``transient`` reply, sent to nobody) is kept in the inbox (``sms_inbox``), and the worker runs it when it
can, its reply going through the outbox: whether the provider would post it again is not documented, so
nothing depends on it. Without an inbox (the embedded default, no ``REDIS_URL``) the customer is asked by SMS to
send it again. While a sender has such a message kept, their newer ones (and the provider's reposts)
are kept behind it, so the replies come in the order the customer wrote.

Answers: ``200 OK`` once the reply is sent or queued, or the message kept; ``400`` (plain text) for a
malformed message, which sending again would not mend; ``503`` when the product failed to serve a
well-formed message and could not keep it either (the database down too; the reply neither sent nor
queued; an unexpected error), so that a provider that posts it again may: a 4xx it surely drops.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flask import Blueprint, Response, request

from engine import (
    ChannelCapabilities,
    Engine,
    LoggingSecurityAudit,
    Reply,
    SecurityAudit,
    SecurityEvent,
    Turn,
)
from engine.charset import is_gsm7, sms_segments
from engine.masking import mask

from .adapter import BadRequest, ChannelAdapter, KeyedBySender
from .answer_ledger import (
    AnswerLedger,
    Claim,
    DurableAnswers,
    MemoryAnswerLedger,
    claim_message,
    record_answered,
    release_claim,
)
from .capabilities import SMS, SMS_MAX_SEGMENTS, SMS_NAVIGATION_WORDS
from .gateway_guard import TOKEN_HEADER, GatewayGuard
from .msisdn import to_e164
from .sms_handover import ReplyHandOver, ReplyOutbox, ReplySender
from .sms_inbox import Inbox, KeptMessage, keep_for_worker, waits_behind

__all__ = ["CAPABILITIES", "MAX_SEGMENTS", "ReplyOutbox", "ReplySender", "SmsAdapter", "fit_segments"]

log = logging.getLogger("channels.sms")

# Three concatenated GSM-7 parts, no Back/Home line (channels.capabilities).
CAPABILITIES: Final = SMS
CHANNEL: Final = SMS.name
MAX_SEGMENTS: Final = SMS_MAX_SEGMENTS
NAVIGATION_WORDS: Final = SMS_NAVIGATION_WORDS
DEFAULT_IDLE_SECONDS: Final = 300
PROVIDER: Final = "africastalking"   # who carries this channel's messages (kept messages name it)
MAX_TEXT_CHARS: Final = 1000
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_SHORT_CODE = re.compile(r"^[+0-9A-Za-z]{1,20}$")
_ELLIPSIS = "..."


def fit_segments(text: str, limit: int = MAX_SEGMENTS) -> str:
    """``text`` cut (between words, with an ellipsis) to at most ``limit`` SMS parts."""
    if sms_segments(text) <= limit:
        return text
    words = text.split(" ")
    while words and sms_segments(" ".join(words) + _ELLIPSIS) > limit:
        words.pop()
    return (" ".join(words) + _ELLIPSIS) if words else text[: (153 if is_gsm7(text) else 67) * limit]


def _clean_text(text: str) -> str:
    """One message as a command line: control characters become spaces."""
    return " ".join("".join(c if unicodedata.category(c)[0] != "C" else " " for c in text).split())


@dataclass(frozen=True)
class SmsAdapter(KeyedBySender, ChannelAdapter):
    """Africa's Talking SMS; ``sender`` sends the replies, ``outbox`` takes those it cannot send now (or all of
    them when there is no sender), ``ledger`` marks those neither could take until the provider's retry;
    ``inbox`` keeps the messages the engine could not run now, for the worker (``sms_inbox``); ``answers`` says,
    once the ledger forgot (Redis restarted empty), whether a message was answered all the same."""

    sender: ReplySender | None = None
    default_region: str = "SN"
    guard: GatewayGuard = field(default_factory=GatewayGuard)
    security: SecurityAudit = field(default_factory=LoggingSecurityAudit)
    idle_seconds: int = DEFAULT_IDLE_SECONDS
    on_reject: Callable[[], None] | None = None
    channel: str = CHANNEL
    prefix: str = "/sms/africastalking"
    outbox: ReplyOutbox | None = None
    ledger: AnswerLedger = field(default_factory=MemoryAnswerLedger)
    inbox: Inbox | None = None
    answers: DurableAnswers | None = None

    @property
    def capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def owns(self, path: str) -> bool:
        # Delivery reports under the same prefix have their own blueprint and answers.
        return path == self.prefix

    def parse(self, form: Mapping[str, str]) -> Turn:
        message_id = (form.get("id") or "").strip()
        if not _MESSAGE_ID.match(message_id):
            raise BadRequest("id missing or malformed")
        sender = to_e164(form.get("from") or "", self.default_region)
        if sender is None:
            raise BadRequest("from missing or not a number")
        short_code = (form.get("to") or "").strip()
        if short_code and not _SHORT_CODE.match(short_code):
            raise BadRequest("to malformed")
        raw = form.get("text")
        if raw is None:
            raise BadRequest("text missing")
        if len(raw) > MAX_TEXT_CHARS:
            raise BadRequest(f"text longer than {MAX_TEXT_CHARS} characters")
        # The operator vouches for the sending number, as for USSD: it is the customer.
        return Turn(channel=CHANNEL, address=sender, customer=sender,
                    session_key=self.session_policy.key(CHANNEL, address=sender),
                    input=_clean_text(raw), hop_id=message_id, entry=short_code or "*")

    def turn_of(self, message: KeptMessage) -> Turn:
        """The turn of a kept message, read as it was when it arrived (``parse`` of the same fields)."""
        return self.parse({"from": message.sender, "to": message.short_code, "text": message.text or "",
                           "id": message.message_id})

    def render(self, reply: Reply) -> str:
        return fit_segments(reply.text)

    def reply_text(self, reply: Reply) -> str:
        return self.render(reply)

    def reply_messages(self, engine: Engine, reply: Reply) -> list[Any]:
        # An SMS reply is its text: the SDK cuts it into parts.
        return []

    def answered_elsewhere(self, message_id: str) -> bool:
        # The callback marks each message it answered (``sms_handover``): the worker does not run it again.
        return ReplyHandOver(self.sender, self.outbox, self.ledger).answered(message_id)

    def answered_later(self, message_id: str) -> None:
        # Its reply went through the outbox: the same message posted again is not run again.
        ReplyHandOver(self.sender, self.outbox, self.ledger).settle(message_id)

    def error_response(self, status: int = 400, headers: Mapping[str, str] | None = None) -> Response:
        # The provider only needs a status: the customer sees nothing of this answer.
        return Response("invalid message", status=status, mimetype="text/plain", headers=dict(headers or {}))

    def failure_response(self) -> Response:
        # Not the customer's fault: a 5xx, so the provider sends the message again (it drops it after a 4xx).
        return Response("temporarily unavailable", status=503, mimetype="text/plain", headers={"Retry-After": "30"})

    def blueprint(self, engine: Engine) -> Blueprint:
        bp = Blueprint("sms", __name__)
        handover = ReplyHandOver(self.sender, self.outbox, self.ledger)

        @bp.post(self.prefix)
        def incoming() -> Response:
            headers = {name: request.headers.get(name, "") for name in (TOKEN_HEADER, "X-Forwarded-For")}
            refusal = self.guard.check(headers, request.args, request.remote_addr)
            if refusal is not None:
                log.warning("refused incoming SMS: %s source=%s", refusal.reason, mask(refusal.source))
                self.security.record(SecurityEvent("gateway_refused", CHANNEL, subject=refusal.source or None,
                                                   detail=f"incoming: {refusal.reason}"))
                if self.on_reject is not None:
                    self.on_reject()
                return Response("forbidden", status=403, mimetype="text/plain")
            try:
                turn = self.parse(request.form)
            except BadRequest as exc:
                log.info("rejected incoming SMS: %s", exc)
                if self.on_reject is not None:
                    self.on_reject()
                return self.error_response()
            if handover.answered(turn.hop_id, self.answers):
                # Posted again after it was answered, maybe after the customer wrote since (or after the ledger's
                # Redis restarted empty: the database says so): never run twice.
                log.info("sms repost of an answered message user=%s: not run again", mask(turn.address))
                return Response("OK", mimetype="text/plain")
            # An owed reply's retry was claimed by the delivery that ran it: it hands the reply over, nothing runs.
            claim = Claim.OURS if handover.owes(turn.hop_id) else claim_message(
                self.ledger, self.answers, turn.hop_id, CHANNEL)
            if claim is Claim.TAKEN:
                # Answered by another delivery (just before Redis restarted empty): nothing more.
                log.info("sms copy of an answered message user=%s: not run", mask(turn.address))
                return Response("OK", mimetype="text/plain")
            if claim is Claim.BUSY:
                # Claimed by a delivery whose answer is not recorded: running now, or one that ended owing its reply
                # (the SMS API and the database down, its owed mark lost with Redis). Asked again later: answered
                # then, or taken over once the claim is stale and the reply sent, never "handled" with nothing sent.
                log.info("sms copy of a message claimed and not answered yet user=%s: asked again later",
                         mask(turn.address))
                return self.failure_response()
            if claim is Claim.UNSURE:
                return self.failure_response()
            try:
                response = self._run(engine, handover, turn)
            except Exception:
                release_claim(self.answers, turn.hop_id)
                raise
            if response.status_code != 200:
                release_claim(self.answers, turn.hop_id)    # the provider is asked to post it again: it runs then
            return response

        return bp

    def _run(self, engine: Engine, handover: ReplyHandOver, turn: Turn) -> Response:
        """Run a message this delivery claimed and hand its reply over: ``200``, or the ``503`` that asks the
        provider to post it again."""
        if waits_behind(self.inbox, turn) and self._kept(turn, request.form):
            # Run now, it would be answered before the sender's messages kept earlier: kept behind them.
            return Response("OK", mimetype="text/plain")
        reply = engine.handle(turn)
        if reply.transient:
            # Busy or the session store down: the hop did not run. Kept, the worker runs it; an SMS saying
            # "try again" would ask the customer to do what the worker does.
            if self.inbox is None:
                release_claim(self.answers, turn.hop_id)    # unanswered: posted again, it runs
                return self._refuse(handover, turn, reply)
            return self._keep(turn, request.form)
        node = reply.screen.node if reply.screen else "-"
        if reply.replayed and not handover.take_owed(turn.hop_id):
            log.info("sms retry of an answered message user=%s node=%s: not sent again", mask(turn.address), node)
            return Response("OK", mimetype="text/plain")
        language = reply.screen.language if reply.screen else ""
        if not handover.hand_over(turn.address, self.render(reply), language=language, message_id=turn.hop_id):
            return self.failure_response()
        handover.settle(turn.hop_id)
        # The durable record a repost finds once Redis forgot (``answered_before``), whichever way the reply went.
        record_answered(self.answers, turn.hop_id, channel=CHANNEL)
        log.info("sms hop user=%s node=%s end=%s", mask(turn.address), node, reply.end)
        return Response("OK", mimetype="text/plain")

    def _refuse(self, handover: ReplyHandOver, turn: Turn, reply: Reply) -> Response:
        """No inbox (the embedded default: no worker shares the in-process conversations): the customer is told, in
        an SMS, to send the message again (the engine's transient answer, "request in progress, try again", in
        their language), and the callback answers ``200``; a ``503`` alone would leave them unanswered, as Africa's
        Talking documents no retry. The message stays unanswered: posted again, it runs."""
        language = reply.screen.language if reply.screen else ""
        if not handover.hand_over(turn.address, self.render(reply), language=language,
                                  message_id=f"{turn.hop_id}:again"):
            return self.failure_response()
        log.warning("sms message from %s not run now (no inbox without REDIS_URL): asked to send it again",
                    mask(turn.address))
        return Response("OK", mimetype="text/plain")

    def _keep(self, turn: Turn, form: Mapping[str, str]) -> Response:
        """The message kept for the worker: ``200``; ``503`` when it cannot be (then only a provider that posts
        it again brings it back)."""
        if self._kept(turn, form):
            return Response("OK", mimetype="text/plain")
        return self.failure_response()

    def _kept(self, turn: Turn, form: Mapping[str, str]) -> bool:
        return keep_for_worker(self.inbox, turn, text=form.get("text") or "", provider=PROVIDER,
                               short_code=turn.entry if turn.entry != "*" else "")
