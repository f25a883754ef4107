"""Consumption of the current meter: last reading, 7 and 30 days against the period before,
and the next bill's estimate (postpaid) or the remaining credit (prepaid).

The estimate follows the bills' own rules: a bill covers the billing cycle from the tariff's
``billing_day`` of one month to the same day of the next. It takes the kWh used since the
cycle began (in whole days, the metering API's unit), extrapolates the daily average to the
whole cycle and prices it with the tariff of ``deps.settings.tariffs_path``, as a bill is.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.steps import StepContext, StepResult

from .backends import Consumption
from .registry import Deps, step
from .tariffs import estimate, load_tariff

__all__ = ["billing_cycle", "cycle_projection", "cycle_so_far_days", "percent_change"]

_TENTH = Decimal("0.1")


def percent_change(current: Decimal, previous: Decimal) -> str | None:
    """``"+12"``, ``"-5"`` or ``"0"``: the change in whole percent; ``None`` without a previous period."""
    if previous <= 0:
        return None
    change = ((current - previous) * 100 / previous).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if change == 0:
        return "0"                      # never "-0"
    return f"+{change}" if change > 0 else str(change)


def billing_cycle(now: datetime, billing_day: int) -> tuple[datetime, datetime]:
    """Start and end of the billing cycle holding ``now``: ``billing_day`` at midnight, a month apart."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now.day >= billing_day:
        first = (first + timedelta(days=32)).replace(day=1)
    end = first.replace(day=billing_day)
    return (first - timedelta(days=1)).replace(day=billing_day), end


def cycle_so_far_days(now: datetime, start: datetime) -> int:
    """Whole days (at least 1) covering the time since ``start``."""
    return max(1, math.ceil((now - start) / timedelta(days=1)))


def cycle_projection(kwh_so_far: Decimal, days_so_far: int, cycle_days: int) -> Decimal:
    """The daily average over ``days_so_far`` days extrapolated to the cycle, to 0.1 kWh."""
    return (kwh_so_far * cycle_days / days_so_far).quantize(_TENTH, rounding=ROUND_HALF_UP)


def _kwh(value: Decimal) -> str:
    return str(value.quantize(_TENTH, rounding=ROUND_HALF_UP))


def _period(found: Consumption, days: int) -> dict[str, Any]:
    return {f"cons_kwh_{days}": _kwh(found.kwh),
            f"cons_change_{days}": percent_change(found.kwh, found.previous_kwh)}


@step("consumption.summary", outcomes={"ok", "no_meter", "never_reported"})
def summary(ctx: StepContext, deps: Deps) -> StepResult:
    """Everything the consumption screen shows, in one hop."""
    meter_id = ctx.data.get("meter_id")
    if not meter_id or deps.metering is None:
        return StepResult("no_meter")
    meter = str(meter_id)
    reading = deps.metering.last_reading(meter)
    if reading is None:
        return StepResult("never_reported")
    data: dict[str, Any] = {
        "cons_read_at": reading.at.isoformat(),
        "cons_index": _kwh(reading.index_kwh),
        **_period(deps.metering.consumption(meter, 7), 7),
        **_period(deps.metering.consumption(meter, 30), 30),
    }
    data["cons_compared"] = data["cons_change_7"] is not None and data["cons_change_30"] is not None
    if ctx.data.get("account_kind") == "prepaid":
        credit = deps.metering.prepaid_credit(meter)
        data.update(cons_credit_kwh=_kwh(credit.credit_kwh), cons_credit_at=credit.updated_at.isoformat(),
                    cons_month_kwh=None, cons_month_bill=None)
    else:
        tariff = load_tariff(deps.settings.tariffs_path)
        start, end = billing_cycle(ctx.now, tariff.billing_day)
        days = cycle_so_far_days(ctx.now, start)
        so_far = deps.metering.consumption(meter, days)
        month_kwh = cycle_projection(so_far.kwh, days, (end - start).days)
        bill = estimate(month_kwh, tariff)
        data.update(cons_month_kwh=str(month_kwh), cons_month_bill=str(bill.total),
                    cons_credit_kwh=None, cons_credit_at=None)
    return StepResult("ok", data)
