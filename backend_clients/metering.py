"""``MeteringClient``: readings, consumption and prepaid credit from the head-end / MDM over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dialogs.backends import Consumption, PrepaidCredit, PrepaidPurchase, Reading, Vend

from .http import HttpBackend
from .parsing import MalformedResponse, as_object, decimal, integer, moment, text

__all__ = ["MeteringClient"]


class MeteringClient(HttpBackend):
    """Satisfies ``dialogs.backends.MeteringBackend`` against ``/api/v1/meters``."""

    name = "metering"

    def last_reading(self, meter_id: str) -> Reading | None:
        # 204 (the meter never reported) reaches the parser as None.
        return self._call("GET", "/meters/{}/readings/latest", meter_id,
                          parse=lambda data: None if data is None else parse_reading(as_object(data)))

    def consumption(self, meter_id: str, days: int) -> Consumption:
        return self._call("GET", "/meters/{}/consumption", meter_id, params={"days": days},
                          parse=parse_consumption)

    def prepaid_credit(self, meter_id: str) -> PrepaidCredit:
        return self._call("GET", "/meters/{}/credit", meter_id, parse=parse_credit)

    def vend(self, meter_id: str, *, payment_id: str, amount: Decimal, currency: str,
             idempotency_key: str, payment_key: str | None = None) -> Vend:
        # Keyed: retried on a timeout or 5xx like every keyed POST (the vending system answers a repeat with the
        # first vend, so a retry never credits twice).
        body = {"payment_id": payment_id, "amount": format(amount, "f"), "currency": currency}
        if payment_key:
            body["payment_key"] = payment_key
        return self._call("POST", "/meters/{}/vends", meter_id, json=body,
                          idempotency_key=idempotency_key, parse=parse_vend)


# ---------------------------------------------------------------- JSON -> dataclasses
def parse_reading(data: dict[str, Any]) -> Reading:
    return Reading(meter_id=text(data, "meter_id"), at=moment(data, "at"), index_kwh=decimal(data, "index_kwh"))


def parse_consumption(data: Any) -> Consumption:
    data = as_object(data)
    last = data.get("last_reading")
    return Consumption(
        meter_id=text(data, "meter_id"),
        days=integer(data, "days"),
        kwh=decimal(data, "kwh"),
        previous_kwh=decimal(data, "previous_kwh"),
        last_reading=None if last is None else parse_reading(as_object(last, "last_reading")),
    )


def parse_vend(data: Any) -> Vend:
    data = as_object(data)
    token = text(data, "token")
    if len(token) != 20 or not token.isdigit():
        raise MalformedResponse("field 'token' is not 20 digits")
    return Vend(vend_id=text(data, "vend_id"), meter_id=text(data, "meter_id"), payment_id=text(data, "payment_id"),
                amount=decimal(data, "amount"), kwh=decimal(data, "kwh"), token=token)


def parse_credit(data: Any) -> PrepaidCredit:
    data = as_object(data)
    last = data.get("last_purchase")
    purchase = None
    if last is not None:
        last = as_object(last, "last_purchase")
        purchase = PrepaidPurchase(paid_at=moment(last, "paid_at"), amount=decimal(last, "amount"),
                                   kwh=decimal(last, "kwh"), token=text(last, "token"))
    return PrepaidCredit(meter_id=text(data, "meter_id"), credit_kwh=decimal(data, "credit_kwh"),
                         updated_at=moment(data, "updated_at"), last_purchase=purchase)
