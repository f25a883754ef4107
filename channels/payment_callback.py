"""The mobile-money provider as an inbound channel: ``POST /payments/callback``.

The provider tells us how a payment it started for us ended. The request is trusted only
when ``X-Payment-Signature: t=<unix seconds>,v1=<hex>`` is HMAC-SHA256(secret, "<t>.<raw body>")
made less than five minutes ago. A callback is applied to our ledger once per ``event_id``;
a newly settled payment queues its SMS (receipt or failure notice) in the outbox, deduplicated
per payment and status, so a duplicate callback changes nothing and sends nothing twice.

Answers (always JSON): 200 applied or already applied; 400 malformed; 401 missing or forged
signature; 403 stale signature (replay); 404 unknown payment (the provider retries);
413 body too large; 503 no secret configured (never accept unsigned callbacks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from engine.masking import mask

if TYPE_CHECKING:  # the ports only, as types: the app factory hands in the concrete stores
    from dialogs.registry import Deps
    from dialogs.stores import LocalPayment, Outbox, PaymentLedger, Preferences

__all__ = [
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "TOLERANCE_SECONDS",
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
DEFAULT_LANGUAGE = "fr"


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
    reference: str | None
    token: str | None
    failure_reason: str | None


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
    return CallbackEvent(event_id=str(_text(body, "event_id")), payment_id=str(_text(body, "payment_id")),
                         status=status, reference=_text(body, "reference", required=False),
                         token=_text(body, "token", required=False),
                         failure_reason=_text(body, "failure_reason", required=False))


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify(error=code, message=message)
    response.status_code = status
    return response


class PaymentCallbacks:
    """Applies verified provider callbacks to our ledger and queues the customer's SMS."""

    def __init__(self, ledger: PaymentLedger, outbox: Outbox, preferences: Preferences, secret: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._ledger, self._outbox, self._preferences = ledger, outbox, preferences
        self._secret, self._clock = secret, clock

    def handle(self, raw_body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        verify_signature(self._secret, raw_body, signature, self._clock())
        event = parse_event(raw_body)
        payment, changed = self._ledger.settle(event_id=event.event_id, provider_payment_id=event.payment_id,
                                               status=event.status, reference=event.reference,
                                               token=event.token, failure_reason=event.failure_reason)
        if payment is None:
            raise CallbackRejected(404, "payment_not_found", "no payment with this payment_id")
        # Queued for every final payment, not only when this call changed it: the outbox keeps one
        # event per payment and status, so a duplicate adds nothing, and a receipt lost to a crash
        # between the two writes is queued by the provider's retry.
        queued = self._queue(payment) if payment.status in FINAL_STATUSES else False
        log.info("payment callback payment=%s status=%s user=%s account=%s changed=%s queued=%s",
                 event.payment_id, payment.status, mask(payment.msisdn), mask(payment.account_number),
                 changed, queued)
        return 200, {"status": "applied" if changed else "duplicate", "payment_status": payment.status}

    def _queue(self, payment: LocalPayment) -> bool:
        language = self._preferences.language(payment.msisdn) or DEFAULT_LANGUAGE
        kind = "payment_receipt" if payment.status == "succeeded" else "payment_failed"
        payload = {"payment_id": payment.provider_payment_id, "reference": payment.reference,
                   "amount": format(payment.amount, "f"), "account_number": payment.account_number,
                   "purpose": payment.purpose, "token": payment.token, "failure_reason": payment.failure_reason}
        return self._outbox.add(kind=kind, msisdn=payment.msisdn, language=language, payload=payload,
                                dedupe_key=f"payment:{payment.provider_payment_id}:{payment.status}")


def payment_callback_blueprint(deps: Deps, secret: str) -> Blueprint:
    """The blueprint; ``deps`` is the dialogs' ``Deps`` (its ``ledger``, ``outbox``, ``preferences``)."""
    bp = Blueprint("payment_callback", __name__)
    callbacks = None
    if secret and deps.ledger is not None and deps.outbox is not None:
        callbacks = PaymentCallbacks(deps.ledger, deps.outbox, deps.preferences, secret)
    if callbacks is None:
        log.warning("PAYMENT_CALLBACK_SECRET is not set: %s answers 503 until it is", PATH)

    @bp.post(PATH)
    def callback() -> Response:
        if callbacks is None:
            return _error(503, "not_configured", "payment callbacks are not configured")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _error(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        raw = request.get_data(cache=False)
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            status, body = callbacks.handle(raw, request.headers.get(SIGNATURE_HEADER))
        except CallbackRejected as exc:
            log.info("payment callback refused: %s %s", exc.status, exc.code)
            return _error(exc.status, exc.code, exc.message)
        response = jsonify(body)
        response.status_code = status
        return response

    return bp
