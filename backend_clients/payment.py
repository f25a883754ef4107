"""``PaymentClient``: mobile-money payment initiation (idempotent by key) and status over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dialogs.backends import PAYMENT_STATUSES, PaymentIntent

from .http import HttpBackend
from .parsing import MalformedResponse, as_object, choice, decimal, opt_text, text

__all__ = ["PaymentClient"]


class PaymentClient(HttpBackend):
    """Satisfies ``dialogs.backends.PaymentBackend`` against ``/api/v1/payments``.

    ``initiate`` sends the caller's ``idempotency_key`` as ``Idempotency-Key``, which is what
    makes retrying it (here on 5xx/timeouts, or by the dialog after ``BackendUnavailable``) safe:
    the provider answers a repeat with the same payment and never charges twice.
    """

    name = "payment"

    def initiate(self, *, account_number: str, msisdn: str, amount: Decimal, purpose: str,
                 idempotency_key: str, callback_url: str, wallet: str | None = None) -> PaymentIntent:
        body: dict[str, Any] = {
            "account_number": account_number,
            "msisdn": msisdn,
            "amount": format(amount, "f"),    # decimal string, never a float
            "purpose": purpose,
            "callback_url": callback_url,
        }
        if wallet:
            body["wallet"] = wallet     # the mobile-money operator the customer chose
        return self._call("POST", "/payments", json=body, idempotency_key=idempotency_key, parse=parse_payment)

    def status(self, payment_id: str) -> PaymentIntent:
        return self._call("GET", "/payments/{}", payment_id, parse=parse_payment)

    def by_key(self, idempotency_key: str) -> PaymentIntent | None:
        return self._call("GET", "/payments", params={"idempotency_key": idempotency_key}, parse=parse_found)


def parse_found(data: Any) -> PaymentIntent | None:
    """``{"payments": [Payment]}``: the one payment started with the key, or None."""
    found = as_object(data).get("payments")
    if not isinstance(found, list) or len(found) > 1:
        raise MalformedResponse("'payments' must be a list of at most one payment")
    return parse_payment(found[0]) if found else None


def parse_payment(data: Any) -> PaymentIntent:
    data = as_object(data)
    return PaymentIntent(
        payment_id=text(data, "payment_id"),
        status=choice(data, "status", PAYMENT_STATUSES),
        amount=decimal(data, "amount"),
        currency=text(data, "currency"),
        purpose=choice(data, "purpose", ("bill", "prepaid")),
        account_number=text(data, "account_number"),
        reference=opt_text(data, "reference"),
        token=opt_text(data, "token"),
        failure_reason=opt_text(data, "failure_reason"),
        msisdn=opt_text(data, "msisdn"),
        idempotency_key=opt_text(data, "idempotency_key"),
    )
