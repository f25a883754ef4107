"""The mobile-money provider as an inbound channel: ``POST /payments/callback``.

The provider tells us how a payment it started for us ended. The request is trusted only
when ``X-Payment-Signature: t=<unix seconds>,v1=<hex>`` is HMAC-SHA256(secret, "<t>.<raw body>")
made less than five minutes ago. This module checks and parses; applying the result (once per
``event_id``, with the customer's SMS queued) is the ``apply`` function the app factory hands in.

Answers (always JSON): 200 applied or already applied; 202 kept for an agent (a payment we started, found by
its ``idempotency_key``, that was settled otherwise before this came: an agent's "not paid", then the
customer's late approval); 400 malformed; 401 missing or forged
signature; 403 stale signature (replay); 404 unknown payment, neither its id nor our key (the provider retries);
409 a signed result that disagrees with the ledger (amount, currency, account, number, or a
payment already final the other way): never applied, kept for an agent; 413 body too large;
503 no secret configured (never accept unsigned callbacks), or our ledger could not be written (locked,
timed out, the database gone: nothing was applied, the provider retries). A payment whose provider id we
never recorded (our write failed just after the provider started it) is found by the ``idempotency_key``
the provider echoes. Forged, stale and mismatched
callbacks are security events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, jsonify, request

from engine.security_audit import LoggingSecurityAudit, SecurityAudit, SecurityEvent

__all__ = [
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "TOLERANCE_SECONDS",
    "Applied",
    "CallbackEvent",
    "CallbackRejected",
    "PaymentCallbacks",
    "parse_event",
    "payment_callback_blueprint",
    "sign",
    "verify_signature",
]

log = logging.getLogger("channels.payment_callback")

PATH = "/payments/callback"
SIGNATURE_HEADER = "X-Payment-Signature"
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 8 * 1024
FINAL_STATUSES = ("succeeded", "failed")


class CallbackRejected(Exception):
    """Why a callback is refused: HTTP status, error code and message for the JSON answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def sign(secret: str, raw_body: bytes, timestamp: int) -> str:
    """The header value the provider sends for ``raw_body`` at ``timestamp`` (tests use it)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, raw_body: bytes, header: str | None, now: float) -> None:
    """Raise ``CallbackRejected`` (401 forged or missing, 403 stale) unless ``header`` signs ``raw_body``."""
    if not header:
        raise CallbackRejected(401, "signature_missing", f"the {SIGNATURE_HEADER} header is required")
    parts: dict[str, str] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(name, value)
    timestamp_text, given = parts.get("t", ""), parts.get("v1", "")
    if not timestamp_text.isdigit() or len(timestamp_text) > 12 or not given:
        raise CallbackRejected(401, "signature_invalid", "the signature is malformed")
    timestamp = int(timestamp_text)
    expected = sign(secret, raw_body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise CallbackRejected(401, "signature_invalid", "the signature does not match")
    # Checked after the MAC, so only a genuine but old (replayed) request gets this answer.
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise CallbackRejected(403, "signature_expired", "the signature is too old (replayed request?)")


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    event_id: str
    payment_id: str
    status: str
    amount: Decimal
    currency: str
    account_number: str
    msisdn: str
    reference: str | None
    token: str | None
    failure_reason: str | None
    idempotency_key: str | None = None   # ours, echoed back: finds a payment whose id we never recorded


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying a callback did: the payment's status now (None: unknown payment), whether this
    call changed it, and what disagreed with the ledger (empty when all matched)."""

    payment_status: str | None
    changed: bool
    mismatch: tuple[str, ...] = ()
    kept: bool = False   # a late word on a payment settled otherwise: kept for an agent, answered 202


def _text(body: dict[str, Any], name: str, *, required: bool = True, max_len: int = 100) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise CallbackRejected(400, "missing_field", f"'{name}' is required")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise CallbackRejected(400, "invalid_field", f"'{name}' must be a string of at most {max_len} characters")
    return value


def parse_event(raw_body: bytes) -> CallbackEvent:
    """The callback's fields; ``CallbackRejected`` (400) when the JSON or a field is wrong."""
    try:
        body = json.loads(raw_body)
    except (UnicodeDecodeError, ValueError):
        raise CallbackRejected(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise CallbackRejected(400, "invalid_json", "the body must be a JSON object")
    status = _text(body, "status")
    if status not in FINAL_STATUSES:
        raise CallbackRejected(400, "invalid_field", "'status' must be succeeded or failed")
    event_id, payment_id = str(_text(body, "event_id")), str(_text(body, "payment_id"))
    raw_amount = _text(body, "amount", max_len=20)
    try:
        amount = Decimal(str(raw_amount))
    except InvalidOperation:
        raise CallbackRejected(400, "invalid_field", "'amount' must be a decimal string") from None
    if not amount.is_finite():
        raise CallbackRejected(400, "invalid_field", "'amount' must be a decimal string")
    return CallbackEvent(event_id=event_id, payment_id=payment_id, status=status, amount=amount,
                         currency=str(_text(body, "currency", max_len=8)),
                         account_number=str(_text(body, "account_number", max_len=32)),
                         msisdn=str(_text(body, "msisdn", max_len=20)),
                         reference=_text(body, "reference", required=False),
                         token=_text(body, "token", required=False),
                         failure_reason=_text(body, "failure_reason", required=False),
                         idempotency_key=_text(body, "idempotency_key", required=False, max_len=200))


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify(error=code, message=message)
    response.status_code = status
    return response


class PaymentCallbacks:
    """Checks a provider callback, then hands it to ``apply``."""

    def __init__(self, apply: Callable[[CallbackEvent], Applied], secret: str,
                 clock: Callable[[], float] = time.time, security: SecurityAudit | None = None) -> None:
        self._apply, self._secret, self._clock = apply, secret, clock
        self._security = security or LoggingSecurityAudit()

    def handle(self, raw_body: bytes, signature: str | None, source: str | None = None) -> tuple[int, dict[str, Any]]:
        try:
            verify_signature(self._secret, raw_body, signature, self._clock())
        except CallbackRejected as exc:
            kind = "callback_stale" if exc.status == 403 else "callback_forged"
            # The subject is the sender's address: nobody's number, and what an agent would block.
            self._security.record(SecurityEvent(kind=kind, channel="payment_callback", subject=source,
                                                detail=exc.code))
            raise
        event = parse_event(raw_body)
        try:
            applied = self._apply(event)
        except Exception as exc:  # noqa: BLE001 - our ledger unreachable (locked, timed out, gone): nothing applied
            log.error("payment callback payment=%s not applied, the provider is asked to retry: %s",
                      event.payment_id, type(exc).__name__)
            raise CallbackRejected(503, "unavailable", "the payment could not be recorded now; send it again "
                                   "later") from None
        if applied.payment_status is None:
            raise CallbackRejected(404, "payment_not_found", "no payment with this payment_id")
        if applied.kept:
            # Our payment, settled otherwise before this came: kept for an agent. 2xx, so the provider stops
            # retrying; a 404 would leave the customer's money with no trace on our side.
            return 202, {"status": "kept_for_agent", "payment_status": applied.payment_status}
        if applied.mismatch:
            # The security event is recorded where the ledger was compared (the settlement).
            raise CallbackRejected(409, "mismatch", "the callback disagrees with the payment on record ("
                                   + ", ".join(applied.mismatch) + "); kept for an agent")
        log.info("payment callback payment=%s status=%s changed=%s", event.payment_id, applied.payment_status,
                 applied.changed)
        return 200, {"status": "applied" if applied.changed else "duplicate",
                     "payment_status": applied.payment_status}


def payment_callback_blueprint(apply: Callable[[CallbackEvent], Applied], secret: str,
                               security: SecurityAudit | None = None, *, path: str = PATH,
                               name: str = "payment_callback") -> Blueprint:
    """The blueprint; without a secret it answers 503 (unsigned callbacks are never accepted). ``path`` and
    ``name``: another ledger's callback (the agents' simulator settles its sandbox payments on its own)."""
    bp = Blueprint(name, __name__)
    callbacks = PaymentCallbacks(apply, secret, security=security) if secret else None
    if callbacks is None:
        log.warning("PAYMENT_CALLBACK_SECRET is not set: %s answers 503 until it is", path)

    @bp.post(path)
    def callback() -> Response:
        if callbacks is None:
            return _error(503, "not_configured", "payment callbacks are not configured")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _error(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        raw = request.get_data(cache=False)
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            status, body = callbacks.handle(raw, request.headers.get(SIGNATURE_HEADER), request.remote_addr)
        except CallbackRejected as exc:
            log.info("payment callback refused: %s %s", exc.status, exc.code)
            return _error(exc.status, exc.code, exc.message)
        response = jsonify(body)
        response.status_code = status
        return response

    return bp
