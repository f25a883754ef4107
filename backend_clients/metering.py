"""``MeteringClient``: readings, consumption and prepaid credit from the head-end / MDM over HTTP."""

from __future__ import annotations

from typing import Any

from dialogs.backends import Consumption, PrepaidCredit, PrepaidPurchase, Reading

from .http import HttpBackend
from .parsing import as_object, decimal, integer, moment, text

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
