"""Billing API: customers by phone, accounts, balance, bills, identity check, payments, arrangements."""

from __future__ import annotations

import calendar
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import notices
from .context import services
from .errors import Conflict, Invalid, NotFound
from .models import Account, Arrangement, Bill, Customer, Payment, PaymentPost
from .payment_decisions import pay_bills, started_payment
from .wire import (
    body_hash,
    decimal_field,
    fmt_date,
    fmt_datetime,
    fmt_decimal,
    idempotency_key,
    int_field,
    json_body,
    normalise_msisdn,
    query_int,
    text_field,
)

__all__ = ["blueprint"]

blueprint = Blueprint("billing", __name__, url_prefix="/api/v1")


def account_json(account: Account) -> dict[str, Any]:
    return {
        "account_number": account.account_number,
        "customer_name": account.customer.name,
        "category": account.category,
        "kind": account.kind,
        "zone": account.zone,
        "meter_id": account.meter_id,
        "language": account.customer.language,
        "phone": account.customer.phone,   # the registered number: confirms and is told of new links
    }


def bill_json(bill: Bill) -> dict[str, Any]:
    return {
        "bill_id": bill.bill_id,
        "period": bill.period,
        "issued_on": fmt_date(bill.issued_on),
        "due_on": fmt_date(bill.due_on),
        "amount": fmt_decimal(bill.amount),
        "paid_amount": fmt_decimal(bill.paid_amount),
        "kwh": fmt_decimal(bill.kwh),
        "status": bill.status,
    }


def arrangement_json(arrangement: Arrangement) -> dict[str, Any]:
    return {
        "arrangement_id": arrangement.arrangement_id,
        "account_number": arrangement.account_number,
        "kind": arrangement.kind,
        "created_on": fmt_date(arrangement.created_on),
        "status": arrangement.status,
        "months": arrangement.months,
        "schedule": [dict(item) for item in arrangement.schedule],
    }


def _account(session: Session, number: str) -> Account:
    account = session.get(Account, number)
    if account is None:
        raise NotFound(f"no account {number}", code="account_not_found")
    return account


def _unpaid(session: Session, number: str) -> list[Bill]:
    return list(session.scalars(
        select(Bill).where(Bill.account_number == number, Bill.paid_amount < Bill.amount)
        .order_by(Bill.due_on, Bill.bill_id)
    ))


@blueprint.get("/customers/by-phone/<e164>")
def customer_by_phone(e164: str) -> Response:
    msisdn = normalise_msisdn(e164)
    with services().sessions() as session:
        customer = session.scalar(select(Customer).where(Customer.phone == msisdn)) if msisdn else None
        if customer is None:
            raise NotFound(f"no customer with phone number {e164}", code="customer_not_found")
        return jsonify({
            "customer_id": customer.customer_id,
            "name": customer.name,
            "language": customer.language,
            "phone": customer.phone,
            "accounts": [account_json(a) for a in customer.accounts],
        })


@blueprint.get("/accounts/<account_number>")
def get_account(account_number: str) -> Response:
    with services().sessions() as session:
        return jsonify(account_json(_account(session, account_number)))


def _arrangements(session: Session, number: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Arrangement).where(Arrangement.account_number == number)
        .order_by(Arrangement.created_at.desc())
    )
    return [arrangement_json(a) for a in rows]


@blueprint.get("/accounts/<account_number>/balance")
def balance(account_number: str) -> Response:
    """``?include=arrangements`` adds the account's arrangements, read in the same transaction: the balance
    screen shows both, and one request instead of two halves its cost to the caller."""
    include = request.args.get("include", "")
    if include not in ("", "arrangements"):
        raise Invalid("query parameter 'include' may only be 'arrangements'")
    with services().sessions() as session:
        _account(session, account_number)
        unpaid = _unpaid(session, account_number)
        body: dict[str, Any] = {
            "account_number": account_number,
            "amount": fmt_decimal(sum((b.outstanding for b in unpaid), Decimal(0))),
            "currency": "XOF",
            "unpaid_bills": len(unpaid),
            "oldest_due_on": fmt_date(unpaid[0].due_on) if unpaid else None,
        }
        if include:
            body["arrangements"] = _arrangements(session, account_number)
        return jsonify(body)


@blueprint.get("/accounts/<account_number>/bills")
def bills(account_number: str) -> Response:
    limit = query_int("limit", 12, 1, 100)
    with services().sessions() as session:
        _account(session, account_number)
        rows = session.scalars(
            select(Bill).where(Bill.account_number == account_number)
            .order_by(Bill.period.desc(), Bill.issued_on.desc()).limit(limit)
        )
        return jsonify({"bills": [bill_json(b) for b in rows]})


@blueprint.post("/accounts/<account_number>/verify")
def verify(account_number: str) -> Response:
    body = json_body()
    claimed = decimal_field(body, "last_bill_amount", minimum=Decimal(0), places=2)
    with services().sessions() as session:
        _account(session, account_number)
        last = session.scalar(
            select(Bill).where(Bill.account_number == account_number).order_by(Bill.period.desc()).limit(1)
        )
        return jsonify({"verified": last is not None and last.amount == claimed})


@blueprint.get("/accounts/<account_number>/payments")
def payments(account_number: str) -> Response:
    limit = query_int("limit", 5, 1, 100)
    with services().sessions() as session:
        _account(session, account_number)
        rows = session.scalars(
            select(Payment).where(Payment.account_number == account_number)
            .order_by(Payment.paid_at.desc(), Payment.payment_id).limit(limit)
        )
        return jsonify({"payments": [_payment_json(p) for p in rows]})



def _payment_json(payment: Payment) -> dict[str, Any]:
    return {"payment_id": payment.payment_id, "reference": payment.reference, "amount": fmt_decimal(payment.amount),
            "currency": payment.currency, "paid_at": fmt_datetime(payment.paid_at), "channel": payment.channel}


@blueprint.post("/accounts/<account_number>/payments")
def post_payment(account_number: str) -> tuple[Response, int]:
    """Money received outside the mobile-money flow (an agent's settlement on the provider's proof): it pays
    the account's bills oldest first, as an approved payment does. The ``payment_id`` (the provider's) is the
    payment's identity: the same payment posted again, or approved by the provider later, is never counted
    twice; the same id with another account or amount is a conflict. ``payment_key`` (the key the payment was
    started with) finds the provider's payment when ``payment_id`` is the receipt's reference. The ``Idempotency-Key`` (IETF
    httpapi-idempotency-key-header): the same key and body get the first answer again, the same key with
    another body 422 ``idempotency_key_reused``."""
    key = idempotency_key()
    body = json_body()
    digest = body_hash({"account_number": account_number, **body})
    with services().sessions() as session:
        replayed = _replay(session, key, digest)
        if replayed is not None:
            return replayed
        _account(session, account_number)
        given = str(text_field(body, "payment_id", max_len=40))
        payment_key = text_field(body, "payment_key", required=False, max_len=200)
        amount = decimal_field(body, "amount", minimum=Decimal(1), maximum=Decimal(5000000), places=0)
        currency = text_field(body, "currency", required=False, max_len=3, choices=("XOF",)) or "XOF"
        reference = text_field(body, "reference", required=False, max_len=20) or given[:20]
        # The receipt's reference typed for the provider's id: the key finds that payment, recorded under its id.
        paid = started_payment(session, given, payment_key, account_number, amount, "bill")
        payment_id = paid.payment_id if paid is not None else given
        channel = text_field(body, "channel", required=False, max_len=20) or "agent"
        existing = session.get(Payment, payment_id)
        if existing is not None:
            _same_payment(existing, account_number, amount)
            session.add(PaymentPost(idempotency_key=key, body_hash=digest, payment_id=payment_id, status=200))
            return _kept(session, (key, digest), existing, 200)
        pay_bills(session, account_number, amount)
        payment = Payment(payment_id=payment_id, account_number=account_number, reference=reference, amount=amount,
                          currency=currency, paid_at=services().now(), channel=channel)
        session.add(payment)
        session.add(PaymentPost(idempotency_key=key, body_hash=digest, payment_id=payment_id, status=201))
        return _kept(session, (key, digest), payment, 201)


def _same_payment(existing: Payment, account_number: str, amount: Decimal) -> None:
    if existing.account_number != account_number or existing.amount != amount:
        raise Conflict(f"payment {existing.payment_id} was received with another account or amount",
                       code="idempotency_conflict")


def _replay(session: Session, key: str, digest: str) -> tuple[Response, int] | None:
    """The first answer to ``key`` when it came with this body; 422 when it came with another; None when new."""
    seen = session.get(PaymentPost, key)
    if seen is None:
        return None
    if seen.body_hash != digest:
        raise Invalid("this Idempotency-Key was used with another body; send a new key for another payment",
                      code="idempotency_key_reused")
    payment = session.get(Payment, seen.payment_id)
    assert payment is not None   # kept in the same transaction as the key
    return jsonify(_payment_json(payment)), seen.status


def _kept(session: Session, request_key: tuple[str, str], payment: Payment, status: int) -> tuple[Response, int]:
    """Commit the payment and its key (``(Idempotency-Key, body hash)``); a request that raced in with the same
    key or payment wins, and this one gets its answer (or the refusal its body deserves)."""
    answer, account_number, amount = _payment_json(payment), payment.account_number, payment.amount
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        replayed = _replay(session, *request_key)
        if replayed is not None:
            return replayed
        raced = session.get(Payment, str(answer["payment_id"]))
        if raced is None:
            raise
        _same_payment(raced, account_number, amount)
        return jsonify(_payment_json(raced)), 200
    return jsonify(answer), status


@blueprint.get("/accounts/<account_number>/arrangements")
def arrangements(account_number: str) -> Response:
    with services().sessions() as session:
        _account(session, account_number)
        return jsonify({"arrangements": _arrangements(session, account_number)})


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _schedule(kind: str, months: int, due: Decimal, today: date) -> list[dict[str, str | None]]:
    """Deferral: everything due in ``months`` months. Instalments: ``months`` monthly parts (whole XOF)."""
    if kind == "deferral":
        return [{"due_on": fmt_date(_add_months(today, months)), "amount": fmt_decimal(due)}]
    part = (due / months).quantize(Decimal(1), rounding="ROUND_DOWN")
    parts = [due - part * (months - 1)] + [part] * (months - 1)  # the remainder on the first
    return [{"due_on": fmt_date(_add_months(today, i + 1)), "amount": fmt_decimal(p)} for i, p in enumerate(parts)]


@blueprint.post("/accounts/<account_number>/arrangements")
def create_arrangement(account_number: str) -> tuple[Response, int]:
    key = idempotency_key()
    body = json_body()
    digest = body_hash({"account_number": account_number, **body})
    with services().sessions() as session:
        _account(session, account_number)
        existing = session.scalar(select(Arrangement).where(Arrangement.idempotency_key == key))
        if existing is not None:
            if existing.body_hash != digest:
                raise Conflict("this Idempotency-Key was used with another body", code="idempotency_conflict")
            return jsonify(arrangement_json(existing)), 200
        kind = text_field(body, "kind", max_len=20, choices=("deferral", "instalments"))
        months = int_field(body, "months", minimum=1, maximum=6)
        active = session.scalar(select(Arrangement).where(
            Arrangement.account_number == account_number, Arrangement.status == "active"))
        if active is not None:
            raise Conflict(f"account {account_number} already has the active arrangement {active.arrangement_id}",
                           code="arrangement_exists")
        due = sum((b.outstanding for b in _unpaid(session, account_number)), Decimal(0))
        if due <= 0:
            raise Conflict(f"account {account_number} has nothing to pay", code="nothing_due")
        now = services().now()
        arrangement = Arrangement(
            arrangement_id="ARR-" + uuid.uuid4().hex[:10].upper(), account_number=account_number, idempotency_key=key,
            body_hash=digest, kind=kind, created_on=now.date(), created_at=now, status="active", months=months,
            schedule=_schedule(kind or "", months, due, now.date()),
        )
        session.add(arrangement)
        notices.arrangement_approved(session, arrangement)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raced = session.scalar(select(Arrangement).where(Arrangement.idempotency_key == key))
            if raced is None or raced.body_hash != digest:
                raise Conflict("this Idempotency-Key was used with another body", code="idempotency_conflict")
            return jsonify(arrangement_json(raced)), 200
        return jsonify(arrangement_json(arrangement)), 201
