"""Africa's Talking USSD: form callback in, ``CON``/``END`` text out.

The gateway sends the whole ``*``-joined input history in ``text`` on every hop; the
adapter hands the engine only the newest hop, plus the full history as ``dialed`` so a
first hop that already carries input (``*123*1#``) works as a shortcut. The full ``text``
is the hop id: a replayed request gets the recorded answer.

The gateway shows the subscriber a network error for anything but ``200`` with
``CON``/``END``, so a request the adapter cannot read (missing or malformed fields, NUL
bytes, a body too large, JSON) still gets ``200`` and a polite ``END`` in both languages;
the reason goes to the log, masked. A caller without the gateway's credentials gets ``403``
and nothing runs (``gateway_guard``).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final
from urllib.parse import unquote_to_bytes

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

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

from .adapter import BadRequest, ChannelAdapter, SessionPolicy
from .capabilities import USSD
from .gateway_guard import TOKEN_HEADER, GatewayGuard, Refusal
from .msisdn import to_e164

__all__ = ["INVALID_REQUEST", "BadRequest", "UssdAdapter", "answer", "error_response", "is_ascii_form",
           "ussd_blueprint"]

log = logging.getLogger("channels.ussd")

CHANNEL = USSD.name
_SESSION_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_SERVICE_CODE = re.compile(r"^[*#0-9]{2,40}$")
# A long session accumulates its whole history in ``text`` (free-text answers included): room
# for a few hundred hops, far below what would cost the engine anything.
MAX_TEXT_CHARS: Final = 4000
MAX_SEGMENTS: Final = 200
# What a handset cannot type: control characters (NUL, newlines), format and private-use
# characters, surrogates, and U+FFFD, which stands for bytes that were not UTF-8.
_UNTYPABLE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_REPLACEMENT_CHAR: Final = "\ufffd"

INVALID_REQUEST: Final = ("Désolé, nous n'avons pas pu lire votre demande. Merci de recomposer le code. / "
                          "Sorry, we could not read your request. Please dial the code again.")
ACCESS_DENIED: Final = "Accès refusé. / Access denied."
EVENT_STATUSES: Final = ("Success", "Incomplete", "Failed")
_MAX_ERROR_CHARS: Final = 200
CAPABILITIES: Final = USSD  # 182 GSM-7 characters, the CON/END prefix included (channels.capabilities)
SESSION_POLICY: Final = SessionPolicy("gateway")


# A percent-escape of a byte above 0x7F: only a body with one (or with raw such bytes) can be non-UTF-8.
_HIGH_ESCAPE: Final = re.compile(rb"%[89A-Fa-f]")


def _caller(raw: str, region: str) -> str | None:
    """``to_e164``, remembered: a gateway sends the same caller on every hop of a session. Only short
    texts are remembered (a number is), so hostile input cannot fill the memory."""
    return _known_caller(raw, region) if len(raw) <= 40 else to_e164(raw, region)


_known_caller = lru_cache(maxsize=65_536)(to_e164)


def is_ascii_form(raw: bytes) -> bool:
    """Whether a urlencoded body is ASCII once unescaped too (no byte, raw or ``%``-escaped, above 0x7F)."""
    return raw.isascii() and (b"%" not in raw or not _HIGH_ESCAPE.search(raw))


def _is_utf8_form(raw: bytes) -> bool:
    """Whether a urlencoded body decodes as UTF-8 (werkzeug keeps bytes that do not as ``%FF`` text)."""
    if is_ascii_form(raw):
        return True   # ASCII is UTF-8
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _typable(text: str) -> bool:
    if text.isascii() and text.isprintable():
        return True   # printable ASCII, what keypads send: no control character in it
    return _REPLACEMENT_CHAR not in text and not any(
        unicodedata.category(char) in _UNTYPABLE_CATEGORIES for char in text)


@dataclass(frozen=True)
class UssdAdapter(ChannelAdapter):
    """Africa's Talking USSD; ``guard``, ``security`` and ``on_reject`` serve its blueprint."""

    default_region: str = "SN"
    guard: GatewayGuard = field(default_factory=GatewayGuard)
    security: SecurityAudit = field(default_factory=LoggingSecurityAudit)
    on_reject: Callable[[], None] | None = None
    channel: str = CHANNEL
    prefix: str = "/ussd/"

    @property
    def capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    @property
    def session_policy(self) -> SessionPolicy:
        return SESSION_POLICY

    def blueprint(self, engine: Engine) -> Blueprint:
        return ussd_blueprint(engine, self, self.guard, self.security, self.on_reject)

    def error_response(self, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return error_response(status, headers)

    def parse(self, form: Mapping[str, str]) -> Turn:
        """The form of one callback as a ``Turn``; ``BadRequest`` when a field is missing or malformed."""
        session_id = (form.get("sessionId") or "").strip()
        if not _SESSION_ID.match(session_id):
            raise BadRequest("sessionId missing or malformed")
        service_code = (form.get("serviceCode") or "").strip()
        if not _SERVICE_CODE.match(service_code):
            raise BadRequest("serviceCode missing or malformed")
        msisdn = _caller(form.get("phoneNumber") or "", self.default_region)
        if msisdn is None:
            raise BadRequest("phoneNumber missing or not a number")
        text = form.get("text")
        if text is None:
            raise BadRequest("text missing")
        if len(text) > MAX_TEXT_CHARS:
            raise BadRequest(f"text longer than {MAX_TEXT_CHARS} characters")
        if not _typable(text):
            raise BadRequest("text holds characters no handset sends")
        segments = tuple(text.split("*")) if text else ()
        if len(segments) > MAX_SEGMENTS:
            raise BadRequest(f"text holds more than {MAX_SEGMENTS} inputs")
        # The operator vouches for the number a USSD session comes from: it is the customer.
        return Turn(channel=CHANNEL, address=msisdn, customer=msisdn,
                    session_key=SESSION_POLICY.key(CHANNEL, gateway_session=session_id),
                    input=segments[-1] if segments else None, hop_id=text, dialed=segments,
                    entry=service_code, cumulative=True)

    def render(self, reply: Reply) -> str:
        return ("END " if reply.end else "CON ") + reply.text


def _plain(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status=status, mimetype="text/plain", headers=dict(headers or {}))


def error_response(status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """The adapter's one error answer: a polite ``END`` in both languages (the gateway shows it as is)."""
    return _plain(f"END {INVALID_REQUEST}", status, headers)


def _clean(value: str | None, limit: int) -> str | None:
    """A gateway field made safe for an audit row: one line, printable, bounded."""
    if not value:
        return None
    text = "".join(char if unicodedata.category(char)[0] != "C" else " " for char in value)
    text = " ".join(text.split())[:limit]
    return text or None


def answer(engine: Engine, adapter: UssdAdapter, turn: Turn) -> str:
    """One hop read from the callback: the engine's reply in the wire format, the hop logged masked."""
    reply = engine.handle(turn)
    log.info("ussd hop user=%s node=%s end=%s", mask(turn.user_id),
             reply.screen.node if reply.screen else "-", reply.end)
    return adapter.render(reply)


def ussd_blueprint(engine: Engine, adapter: UssdAdapter, guard: GatewayGuard | None = None,
                   security: SecurityAudit | None = None,
                   on_reject: Callable[[], None] | None = None) -> Blueprint:
    """The callback and its end-of-session events; ``on_reject`` counts each request turned away."""
    bp = Blueprint("ussd", __name__)
    guard = guard or GatewayGuard()
    audit = security or LoggingSecurityAudit()

    def refused(endpoint: str) -> Response | None:
        headers = {name: request.headers.get(name, "") for name in (TOKEN_HEADER, "X-Forwarded-For")}
        refusal: Refusal | None = guard.check(headers, request.args, request.remote_addr)
        if refusal is None:
            return None
        # The source address is the subject: the sink keeps a pseudonym of it, the log a masked form.
        log.warning("refused USSD %s request: %s source=%s", endpoint, refusal.reason, mask(refusal.source))
        audit.record(SecurityEvent(kind="gateway_refused", channel=CHANNEL, subject=refusal.source or None,
                                   detail=f"{endpoint}: {refusal.reason}"))
        if on_reject is not None:
            on_reject()
        return _plain(f"END {ACCESS_DENIED}", 403)

    def rejected(reason: str, phone: str | None = None) -> Response:
        log.info("rejected USSD callback: %s user=%s", reason, mask(phone))
        if on_reject is not None:
            on_reject()
        return error_response()

    @bp.post("/ussd/africastalking")
    def callback() -> Response:
        denied = refused("callback")
        if denied is not None:
            return denied
        try:
            if request.mimetype == "application/x-www-form-urlencoded" and not _is_utf8_form(
                    request.get_data(cache=True)):
                return rejected("body is not UTF-8")
            form = request.form
        except RequestEntityTooLarge:
            return rejected("body larger than the limit")
        try:
            turn = adapter.parse(form)
        except BadRequest as exc:
            return rejected(str(exc), to_e164(form.get("phoneNumber") or "", adapter.default_region))
        return _plain(answer(engine, adapter, turn))

    @bp.post("/ussd/africastalking/events")
    def events() -> Response:
        denied = refused("events")
        if denied is not None:
            return denied
        form = request.form
        session_id = (form.get("sessionId") or "").strip()
        status = (form.get("status") or "").strip()
        if not _SESSION_ID.match(session_id) or status not in EVENT_STATUSES:
            log.info("rejected USSD end-of-session notification: sessionId or status malformed")
            return _plain("invalid end-of-session notification", 400)
        engine.finish(channel=CHANNEL, session_key=SESSION_POLICY.key(CHANNEL, gateway_session=session_id),
                      user_id=to_e164(form.get("phoneNumber") or "", adapter.default_region) or "",
                      status=status, duration_ms=_int(form.get("durationInMillis")),
                      error=_clean(form.get("errorMessage"), _MAX_ERROR_CHARS), hops=_int(form.get("hopsCount")))
        return _plain("OK")

    return bp


def _int(value: str | None) -> int | None:
    """A gateway counter: digits only, bounded (a session lasts minutes and a few dozen hops)."""
    text = (value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        return None
    return int(text)
