"""Mobile-money API: idempotent initiation, status, manual approve/decline, callback resend."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .context import services
from .errors import BadRequest, Conflict, Invalid, NotFound
from .models import Account, PaymentIntent
from .payment_decisions import payment_json
from .wallets import OPERATORS, refusal, wallet_for_update
from .wire import body_hash, decimal_field, json_body, normalise_msisdn, text_field, utcnow

__all__ = ["MAX_AMOUNT", "blueprint"]

blueprint = Blueprint("payments", __name__, url_prefix="/api/v1/payments")

MAX_AMOUNT = Decimal(5000000)
MAX_KEY_LENGTH = 200
_REFUSALS = {
    "wallet_not_found": "this number has no wallet with this operator",
    "wallet_limit_exceeded": "the amount is above the operator's limit for one payment",
    "insufficient_funds": "the wallet's balance is lower than the amount",
}


def _idempotency_key() -> str:
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if not key:
        raise BadRequest("the Idempotency-Key header is required", code="idempotency_key_required")
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters", code="bad_idempotency_key")
    return key


def _replay(intent: PaymentIntent, digest: str) -> tuple[Response, int]:
    if intent.body_hash != digest:
        raise Conflict("this Idempotency-Key was used with another body", code="idempotency_conflict")
    return jsonify(payment_json(intent)), 200


def _validated(body: dict[str, Any]) -> dict[str, Any]:
    account_number = text_field(body, "account_number", max_len=20)
    raw_msisdn = text_field(body, "msisdn", max_len=20)
    msisdn = normalise_msisdn(raw_msisdn or "")
    if msisdn is None:
        raise Invalid("'msisdn' must be an E.164 phone number such as +221770000001")
    amount = decimal_field(body, "amount", minimum=Decimal(1), maximum=MAX_AMOUNT, places=0)  # XOF: no cents
    purpose = text_field(body, "purpose", max_len=10, choices=("bill", "prepaid"))
    wallet = text_field(body, "wallet", required=False, max_len=40, choices=OPERATORS)
    callback_url = text_field(body, "callback_url", required=False, max_len=2000)
    if callback_url:
        parsed = urlparse(callback_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise Invalid("'callback_url' must be an http(s) URL")
        if not services().config.allows_callback_to(callback_url):   # signed events go to known hosts only
            raise Invalid("'callback_url' is not on a host this back office sends callbacks to "
                          "(BACKOFFICE_CALLBACK_HOSTS)")
    return {"account_number": account_number, "msisdn": msisdn, "amount": amount, "purpose": purpose,
            "callback_url": callback_url or None, "wallet": wallet or None}


@blueprint.post("")
def initiate() -> tuple[Response, int]:
    key = _idempotency_key()
    body = json_body()
    digest = body_hash(body)
    bo = services()
    with bo.sessions() as session:
        existing = session.scalar(select(PaymentIntent).where(PaymentIntent.idempotency_key == key))
        if existing is not None:
            return _replay(existing, digest)
        fields = _validated(body)
        account = session.get(Account, fields["account_number"])
        if account is None:
            raise NotFound(f"no account {fields['account_number']}", code="account_not_found")
        if fields["purpose"] == "prepaid" and account.kind != "prepaid":
            raise Invalid(f"account {account.account_number} is not prepaid", code="not_prepaid")
        if fields["wallet"]:
            # The operator answers at once when it cannot pay: the customer is told why on the same screen.
            why = refusal(wallet_for_update(session, fields["wallet"], fields["msisdn"]), fields["amount"])
            if why is not None:
                raise Invalid(_REFUSALS[why], code=why)
        intent = PaymentIntent(payment_id="PAY-" + uuid.uuid4().hex[:16].upper(), idempotency_key=key,
                               body_hash=digest, currency="XOF", status="pending", created_at=utcnow(),
                               callback_attempts=0, **fields)
        session.add(intent)
        try:
            session.commit()
        except IntegrityError:  # the same key raced in from a concurrent request
            session.rollback()
            raced = session.scalar(select(PaymentIntent).where(PaymentIntent.idempotency_key == key))
            if raced is None:
                raise
            return _replay(raced, digest)
    if bo.config.payment_approval == "auto":
        bo.payments.schedule(intent.payment_id)
    return jsonify(payment_json(intent)), 202


@blueprint.get("")
def find_by_key() -> Response:
    """The payment started with an ``Idempotency-Key`` (0 or 1 in ``payments``): the payer asks it about a
    payment whose id it never recorded. Looking never starts one, unlike sending the request again."""
    key = (request.args.get("idempotency_key") or "").strip()
    if not key:
        raise BadRequest("the 'idempotency_key' query parameter is required", code="idempotency_key_required")
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"idempotency_key is longer than {MAX_KEY_LENGTH} characters", code="bad_idempotency_key")
    with services().sessions() as session:
        intent = session.scalar(select(PaymentIntent).where(PaymentIntent.idempotency_key == key))
        return jsonify({"payments": [payment_json(intent)] if intent is not None else []})


@blueprint.get("/<payment_id>")
def get_payment(payment_id: str) -> Response:
    with services().sessions() as session:
        intent = session.get(PaymentIntent, payment_id)
        if intent is None:
            raise NotFound(f"no payment {payment_id}", code="payment_not_found")
        return jsonify(payment_json(intent))


def _optional_reason() -> str:
    if not request.get_data(cache=True).strip():
        return "declined_by_customer"
    reason = text_field(json_body(), "reason", required=False, max_len=60)
    return reason or "declined_by_customer"


@blueprint.post("/<payment_id>/approve")
def approve(payment_id: str) -> Response:
    return jsonify(payment_json(services().payments.decide(payment_id, approve=True)))


@blueprint.post("/<payment_id>/decline")
def decline(payment_id: str) -> Response:
    reason = _optional_reason()
    return jsonify(payment_json(services().payments.decide(payment_id, approve=False, reason=reason)))


@blueprint.post("/<payment_id>/resend-callback")
def resend_callback(payment_id: str) -> tuple[Response, int]:
    event_id = services().payments.resend(payment_id)
    return jsonify({"payment_id": payment_id, "event_id": event_id, "status": "queued"}), 202
