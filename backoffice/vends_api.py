"""Vending API: a token for a prepaid meter on money received outside the mobile-money flow.

An agent settles by hand a prepaid purchase the provider never confirmed to the product ("paid", on the
provider's proof): the money is in, and the customer needs the 20 digits to key into the meter. The product
asks ``POST /meters/{meter_id}/vends`` for them. One payment buys one token, ever: the ``payment_id`` (the
provider's) is the vend's identity, so the same payment vended again (a retry after a timeout, two supervisors,
the worker) gets the same token and credits the meter once. The ``Idempotency-Key`` is kept as for billing's
posts: the same key and body get the first answer again, the same key with another body 422
``idempotency_key_reused``.

The supervisor's reference may be the receipt's rather than the provider's payment id: the body's ``payment_key``
(the key the product started the payment with) then finds the provider's payment, and the vend is recorded under
that payment's id, so its late approval gives the same token and credits nothing (``payment_decisions``), and a
purchase it approved first keeps its token. The vend is money received, listed with the account's payments
(``GET /accounts/{n}/payments``, channel ``agent``) as an approved purchase is.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .context import services
from .errors import Conflict, Invalid, NotFound
from .models import Meter, Payment, PaymentIntent, Vend
from .payment_decisions import XOF_PER_KWH, started_payment, sts_token
from .wire import body_hash, decimal_field, fmt_datetime, fmt_decimal, idempotency_key, json_body, text_field

__all__ = ["MAX_VEND", "MIN_VEND", "blueprint", "vend_json"]

blueprint = Blueprint("vends", __name__, url_prefix="/api/v1")

# What one purchase may be, as the product's Pay menu allows it (dialogs/payments.py).
MIN_VEND = Decimal(100)
MAX_VEND = Decimal(2_000_000)


def vend_json(vend: Vend) -> dict[str, Any]:
    return {"vend_id": vend.vend_id, "meter_id": vend.meter_id, "payment_id": vend.payment_id,
            "amount": fmt_decimal(vend.amount), "currency": vend.currency, "kwh": fmt_decimal(vend.kwh),
            "token": vend.token, "vended_at": fmt_datetime(vend.created_at)}



def _replay(session: Session, key: str, digest: str) -> Vend | None:
    """The vend first made under ``key`` with this body; 422 when the key came with another body; None when new."""
    seen = session.scalar(select(Vend).where(Vend.idempotency_key == key))
    if seen is not None and seen.body_hash != digest:
        raise Invalid("this Idempotency-Key was used with another body; send a new key for another vend",
                      code="idempotency_key_reused")
    return seen


def _same_payment(session: Session, payment_id: str, meter_id: str, amount: Decimal) -> Vend | None:
    """The vend already made for ``payment_id`` (under another key); 409 when it was for another meter or amount."""
    vended = session.scalar(select(Vend).where(Vend.payment_id == payment_id))
    if vended is not None and (vended.meter_id != meter_id or vended.amount != amount):
        raise Conflict(f"payment {payment_id} already bought a token for another meter or amount",
                       code="payment_already_vended")
    return vended


def _token_already_bought(paid: PaymentIntent | None) -> str | None:
    """The token the mobile-money flow already issued for this payment (the provider approved it, the product
    never heard, an agent settled it by hand): given again, the meter not credited twice."""
    if paid is not None and paid.status == "succeeded" and paid.token:
        return paid.token
    return None


@blueprint.post("/meters/<meter_id>/vends")
def vend(meter_id: str) -> tuple[Response, int]:
    """Vend a token for ``amount`` XOF on the prepaid meter, paid by ``payment_id``: 201 the new vend, 200 the
    one already made for this key or payment (never a second credit)."""
    key = idempotency_key()
    body = json_body()
    digest = body_hash({"meter_id": meter_id, **body})
    with services().sessions() as session:
        replayed = _replay(session, key, digest)
        if replayed is not None:
            return jsonify(vend_json(replayed)), 200
        meter = session.get(Meter, meter_id)
        if meter is None or not meter.prepaid:
            raise NotFound(f"no prepaid meter {meter_id}", code="meter_not_found")
        reference = str(text_field(body, "payment_id", max_len=40))
        payment_key = text_field(body, "payment_key", required=False, max_len=200)
        amount = decimal_field(body, "amount", minimum=MIN_VEND, maximum=MAX_VEND, places=0)
        currency = text_field(body, "currency", required=False, max_len=3, choices=("XOF",)) or "XOF"
        paid = started_payment(session, reference, payment_key, meter.account_number, amount, "prepaid")
        payment_id = paid.payment_id if paid is not None else reference
        vended = _same_payment(session, payment_id, meter_id, amount)
        if vended is not None:
            return jsonify(vend_json(vended)), 200
        now = services().now()
        kwh = (amount / XOF_PER_KWH).quantize(Decimal("0.001"))
        token = _token_already_bought(paid)
        if token is None:
            locked = session.scalar(select(Meter).where(Meter.meter_id == meter_id).with_for_update())
            assert locked is not None
            locked.credit_kwh = (locked.credit_kwh or Decimal(0)) + kwh
            locked.credit_updated_at = now
        made = Vend(vend_id="VND-" + uuid.uuid4().hex[:12].upper(), idempotency_key=key, body_hash=digest,
                    payment_id=payment_id, meter_id=meter_id, account_number=meter.account_number, amount=amount,
                    currency=currency, kwh=kwh, token=token or sts_token(), created_at=now)
        session.add(made)
        if meter.account_number and session.get(Payment, payment_id) is None:   # an approved one is listed already
            session.add(Payment(payment_id=payment_id, account_number=meter.account_number, reference=reference[:20],
                                amount=amount, currency=currency, paid_at=now, channel="agent"))
        answer = vend_json(made)
        try:
            session.commit()
        except IntegrityError:
            # The same key or payment raced in: that vend is the answer (the meter credited once, by it).
            session.rollback()
            raced = _replay(session, key, digest) or _same_payment(session, payment_id, meter_id, amount)
            if raced is None:
                raise
            return jsonify(vend_json(raced)), 200
        return jsonify(answer), 201
