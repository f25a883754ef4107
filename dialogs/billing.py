"""Balance and bills of the current account."""

from __future__ import annotations

from engine.steps import StepContext, StepResult

from .registry import Deps, step


@step("billing.balance", outcomes={"ok", "no_account"})
def balance(ctx: StepContext, deps: Deps) -> StepResult:
    number = ctx.data.get("account_number")
    if not number:
        return StepResult("no_account")
    found = deps.billing.balance(str(number))
    return StepResult("ok", {
        "balance": str(found.amount),
        "unpaid_bills": found.unpaid_bills,
        "oldest_due_on": found.oldest_due_on.isoformat() if found.oldest_due_on else None,
        "has_balance": found.amount > 0,
    })


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
