"""Consumption of the current meter: last reading, 7 and 30 days against the period before,
and this month's bill estimate (postpaid) or the remaining credit (prepaid).

The month estimate takes the kWh used since the start of the month (in whole days, the
metering API's unit), extrapolates the daily average to the whole month and prices it with
the tariff of ``deps.settings.tariffs_path``.
"""

from __future__ import annotations

import calendar
import math
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.steps import StepContext, StepResult

from .backends import Consumption
from .registry import Deps, step
from .tariffs import estimate, load_tariff

__all__ = ["month_projection", "month_so_far_days", "percent_change"]

_TENTH = Decimal("0.1")


def percent_change(current: Decimal, previous: Decimal) -> str | None:
    """``"+12"``, ``"-5"`` or ``"0"``: the change in whole percent; ``None`` without a previous period."""
    if previous <= 0:
        return None
    change = ((current - previous) * 100 / previous).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if change == 0:
        return "0"                      # never "-0"
    return f"+{change}" if change > 0 else str(change)


def month_so_far_days(now: datetime) -> int:
    """Whole days (at least 1) covering the time since the start of ``now``'s month."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((now - start) / timedelta(days=1)))


def month_projection(kwh_so_far: Decimal, days_so_far: int, now: datetime) -> Decimal:
    """The daily average over ``days_so_far`` days extrapolated to the whole month, to 0.1 kWh."""
    days_in_month = calendar.monthrange(now.year, now.month)[1]
    return (kwh_so_far * days_in_month / days_so_far).quantize(_TENTH, rounding=ROUND_HALF_UP)


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
        days = month_so_far_days(ctx.now)
        so_far = deps.metering.consumption(meter, days)
        month_kwh = month_projection(so_far.kwh, days, ctx.now)
        bill = estimate(month_kwh, load_tariff(deps.settings.tariffs_path))
        data.update(cons_month_kwh=str(month_kwh), cons_month_bill=str(bill.total),
                    cons_credit_kwh=None, cons_credit_at=None)
    return StepResult("ok", data)
