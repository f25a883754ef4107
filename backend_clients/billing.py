"""``BillingClient``: accounts, balances, bills, payments received and arrangements over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from dialogs.backends import Account, Arrangement, Balance, Bill, NotFound, PaymentRecord

from .http import HttpBackend
from .parsing import (
    MalformedResponse,
    as_object,
    choice,
    day,
    decimal,
    integer,
    moment,
    objects,
    opt_day,
    opt_text,
    text,
)

__all__ = ["BillingClient"]

_WITH_ARRANGEMENTS: Final = {"include": "arrangements"}


class BillingClient(HttpBackend):
    """Satisfies ``dialogs.backends.BillingBackend`` against ``/api/v1/customers`` and ``/api/v1/accounts``."""

    name = "billing"

    def accounts_for_phone(self, msisdn: str) -> list[Account]:
        try:
            return self._call("GET", "/customers/by-phone/{}", msisdn,
                              parse=lambda data: [parse_account(a) for a in objects(as_object(data), "accounts")])
        except NotFound:
            return []                         # an unknown number simply has no account

    def account(self, account_number: str) -> Account:
        return self._call("GET", "/accounts/{}", account_number, parse=lambda data: parse_account(as_object(data)))

    def balance(self, account_number: str) -> Balance:
        return self._call("GET", "/accounts/{}/balance", account_number, parse=parse_balance)

    def balance_and_arrangements(self, account_number: str) -> tuple[Balance, list[Arrangement]]:
        # One request (``?include=arrangements``) where the balance screen used to make two: the HTTP
        # exchange is most of a balance hop's CPU. A billing system that ignores ``include`` answers the
        # balance alone; the list is then asked as before, so the screen is never short of a plan.
        found, arrangements = self._call("GET", "/accounts/{}/balance", account_number,
                                         params=_WITH_ARRANGEMENTS, parse=parse_balance_and_arrangements)
        if arrangements is None:
            arrangements = self.arrangements(account_number)
        return found, arrangements

    def bills(self, account_number: str, limit: int = 12) -> list[Bill]:
        return self._call("GET", "/accounts/{}/bills", account_number, params={"limit": limit},
                          parse=lambda data: [parse_bill(b) for b in objects(as_object(data), "bills")])

    def verify_last_bill(self, account_number: str, amount: Decimal) -> bool:
        # POST without idempotency key: a read in disguise, but the contract says POST, so no retry.
        return self._call("POST", "/accounts/{}/verify", account_number,
                          json={"last_bill_amount": format(amount, "f")}, parse=parse_verified)

    def payments(self, account_number: str, limit: int = 5) -> list[PaymentRecord]:
        return self._call("GET", "/accounts/{}/payments", account_number, params={"limit": limit},
                          parse=lambda data: [parse_payment_record(p) for p in objects(as_object(data), "payments")])

    def arrangements(self, account_number: str) -> list[Arrangement]:
        return self._call("GET", "/accounts/{}/arrangements", account_number,
                          parse=lambda data: [parse_arrangement(a)
                                              for a in objects(as_object(data), "arrangements")])

    def create_arrangement(self, account_number: str, kind: str, months: int, idempotency_key: str) -> Arrangement:
        return self._call("POST", "/accounts/{}/arrangements", account_number,
                          json={"kind": kind, "months": months}, idempotency_key=idempotency_key,
                          parse=lambda data: parse_arrangement(as_object(data)))

    def post_payment(self, account_number: str, *, payment_id: str, amount: Decimal, currency: str,
                     reference: str | None, idempotency_key: str, payment_key: str | None = None) -> PaymentRecord:
        body = {"payment_id": payment_id, "amount": format(amount, "f"), "currency": currency, "channel": "agent",
                **({"reference": reference[:20]} if reference else {}),
                **({"payment_key": payment_key} if payment_key else {})}
        return self._call("POST", "/accounts/{}/payments", account_number, json=body,
                          idempotency_key=idempotency_key, parse=lambda data: parse_payment_record(as_object(data)))


# ---------------------------------------------------------------- JSON -> dataclasses
def parse_account(data: dict[str, Any]) -> Account:
    return Account(
        account_number=text(data, "account_number"),
        customer_name=text(data, "customer_name"),
        category=choice(data, "category", ("residential", "business", "municipal")),
        kind=choice(data, "kind", ("postpaid", "prepaid")),
        zone=text(data, "zone"),
        meter_id=text(data, "meter_id"),
        language=opt_text(data, "language") or "fr",
        phone=opt_text(data, "phone"),
    )


def parse_balance(data: Any) -> Balance:
    data = as_object(data)
    return Balance(
        account_number=text(data, "account_number"),
        amount=decimal(data, "amount"),
        currency=text(data, "currency"),
        unpaid_bills=integer(data, "unpaid_bills"),
        oldest_due_on=opt_day(data, "oldest_due_on"),
    )


def parse_balance_and_arrangements(data: Any) -> tuple[Balance, list[Arrangement] | None]:
    """The balance, and its ``arrangements`` when the answer has them (None when it does not)."""
    data = as_object(data)
    if data.get("arrangements") is None:
        return parse_balance(data), None
    return parse_balance(data), [parse_arrangement(a) for a in objects(data, "arrangements")]


def parse_bill(data: dict[str, Any]) -> Bill:
    return Bill(
        bill_id=text(data, "bill_id"),
        period=text(data, "period"),
        issued_on=day(data, "issued_on"),
        due_on=day(data, "due_on"),
        amount=decimal(data, "amount"),
        paid_amount=decimal(data, "paid_amount"),
        kwh=decimal(data, "kwh"),
        status=choice(data, "status", ("unpaid", "partial", "paid")),
    )


def parse_verified(data: Any) -> bool:
    verified = as_object(data).get("verified")
    if not isinstance(verified, bool):
        raise MalformedResponse("field 'verified' is not a boolean")
    return verified


def parse_payment_record(data: dict[str, Any]) -> PaymentRecord:
    return PaymentRecord(
        payment_id=text(data, "payment_id"),
        reference=text(data, "reference"),
        amount=decimal(data, "amount"),
        currency=text(data, "currency"),
        paid_at=moment(data, "paid_at"),
        channel=text(data, "channel"),
    )


def parse_arrangement(data: dict[str, Any]) -> Arrangement:
    schedule = tuple((day(item, "due_on"), decimal(item, "amount"))
                     for item in objects(data, "schedule")) if data.get("schedule") is not None else ()
    return Arrangement(
        arrangement_id=text(data, "arrangement_id"),
        kind=choice(data, "kind", ("deferral", "instalments")),
        created_on=day(data, "created_on"),
        status=choice(data, "status", ("active", "completed", "cancelled")),
        months=integer(data, "months"),
        schedule=schedule,
    )
