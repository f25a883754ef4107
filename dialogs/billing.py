"""Balance and bills of the current account.

A postpaid account shows what is due and, when a deferral or instalment plan is running, its
next payment. A bill payment still being confirmed (``PaymentLedger.awaiting``: the back end's
balance counts it only once settled) is said, and taken off what is left to pay, as the Pay menu
does: the same payments (``payments.on_their_way``), this conversation's own included. A prepaid account has no bill: it shows the credit left, the last purchase with its token,
the average daily use and how many days the credit lasts at that pace; while a purchase is being
confirmed (its token not issued yet) it says so instead of the last purchase.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from engine.steps import StepContext, StepResult

from .backends import Arrangement
from .payments import on_their_way
from .registry import Deps, step

__all__ = ["AVERAGE_DAYS", "days_of_credit", "next_instalment"]

AVERAGE_DAYS = 30
"""The average daily use of a prepaid meter is taken over this many days."""


def next_instalment(arrangement: Arrangement, today: date) -> tuple[date, Decimal] | None:
    """The first payment of the plan due today or later (the last one when all dates are past)."""
    upcoming = [part for part in arrangement.schedule if part[0] >= today]
    if upcoming:
        return upcoming[0]
    return arrangement.schedule[-1] if arrangement.schedule else None


def days_of_credit(credit_kwh: Decimal, daily_kwh: Decimal) -> int | None:
    """Whole days the credit lasts at ``daily_kwh`` a day; None when nothing is used."""
    if daily_kwh <= 0:
        return None
    return int((credit_kwh / daily_kwh).to_integral_value(rounding=ROUND_DOWN))


def _awaited(ctx: StepContext, deps: Deps, number: str, purpose: str = "bill") -> Decimal:
    """Payments of ``purpose`` to the account on their way, as the Pay menu counts them (``on_their_way``)."""
    return sum((p.amount for p in on_their_way(ctx, deps, number, purpose)), Decimal(0))


def _running(ctx: StepContext, arrangements: list[Arrangement]) -> dict[str, Any] | None:
    active = next((a for a in arrangements if a.status == "active"), None)
    due = next_instalment(active, ctx.now.date()) if active is not None else None
    if active is None or due is None:
        return None
    return {"arr_run_id": active.arrangement_id, "arr_run_kind": active.kind,
            "arr_run_next_on": due[0].isoformat(), "arr_run_next_amount": str(due[1])}


def _prepaid(ctx: StepContext, deps: Deps, number: str) -> StepResult:
    meter = ctx.data.get("meter_id")
    if not meter or deps.metering is None:
        return StepResult("no_meter")
    credit = deps.metering.prepaid_credit(str(meter))
    used = deps.metering.consumption(str(meter), AVERAGE_DAYS).kwh
    daily = (used / AVERAGE_DAYS).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    days = days_of_credit(credit.credit_kwh, used / AVERAGE_DAYS)
    data: dict[str, Any] = {"prepaid_credit_kwh": str(credit.credit_kwh), "prepaid_daily_kwh": str(daily),
                            "prepaid_days_left": days}
    awaited = _awaited(ctx, deps, number, "prepaid")
    if awaited > 0:
        # The meter's last purchase is not this one: showing it alone would say nothing was bought.
        return StepResult("prepaid_awaiting", {**data, "prepaid_awaiting": str(awaited)})
    last = credit.last_purchase
    if last is None:
        return StepResult("prepaid_no_purchase", data)
    data.update(prepaid_paid_at=last.paid_at.isoformat(), prepaid_amount=str(last.amount),
                prepaid_kwh=str(last.kwh), prepaid_token=last.token)
    return StepResult("prepaid", data)


@step("billing.balance", outcomes={"ok", "awaiting", "arrangement", "arrangement_awaiting", "prepaid",
                                   "prepaid_no_purchase", "prepaid_awaiting", "no_meter", "no_account"})
def balance(ctx: StepContext, deps: Deps) -> StepResult:
    """What the account owes (and the running arrangement's next payment), or a prepaid meter's credit.
    ``awaiting``/``arrangement_awaiting``: a payment is being confirmed; ``balance`` is then what is left
    to pay once it is (never below 0) and ``pay_awaiting`` its amount. ``prepaid_awaiting``: a prepaid
    purchase is being confirmed, ``prepaid_awaiting`` its amount."""
    number = ctx.data.get("account_number")
    if not number:
        return StepResult("no_account")
    if ctx.data.get("account_kind") == "prepaid":
        return _prepaid(ctx, deps, str(number))
    found, arrangements = deps.billing.balance_and_arrangements(str(number))
    awaited = _awaited(ctx, deps, str(number))
    data: dict[str, Any] = {
        "balance": str(max(found.amount - awaited, Decimal(0))),
        "pay_awaiting": str(awaited) if awaited > 0 else None,
        "unpaid_bills": found.unpaid_bills,
        "oldest_due_on": found.oldest_due_on.isoformat() if found.oldest_due_on else None,
        "has_balance": found.amount > 0,
    }
    running = _running(ctx, arrangements)
    waiting = "_awaiting" if awaited > 0 else ""
    if running is None:
        return StepResult("awaiting" if waiting else "ok", data)
    return StepResult("arrangement" + waiting, {**data, **running})


@step("billing.bills", outcomes={"ok", "none", "no_account"})
def bills(ctx: StepContext, deps: Deps) -> StepResult:
    number = ctx.data.get("account_number")
    if not number:
        return StepResult("no_account")
    limit = int(ctx.params.get("limit", 12))
    found = deps.billing.bills(str(number), limit=limit)
    items = [{
        "bill_id": b.bill_id, "period": b.period, "amount": str(b.amount), "paid_amount": str(b.paid_amount),
        "remaining": str(b.amount - b.paid_amount), "due_on": b.due_on.isoformat(),
        "issued_on": b.issued_on.isoformat(), "kwh": str(b.kwh), "status": b.status,
    } for b in found]
    return StepResult("ok" if items else "none", {"bills": items})
