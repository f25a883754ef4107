"""Who is calling and which account they act on: identification, account choice, linking."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.steps import StepContext, StepResult

from .backends import Account
from .registry import Deps, step

MAX_LINK_ATTEMPTS = 3            # per session
MAX_LINK_ATTEMPTS_PER_DAY = 6    # per phone number, across sessions: the amount check must not be guessable


def account_fields(account: Account | dict[str, Any]) -> dict[str, Any]:
    """The context keys every menu may use about the current account."""
    data = account if isinstance(account, dict) else _as_item(account)
    return {
        "account_number": data["account_number"],
        "customer_name": data["customer_name"],
        "account_kind": data["kind"],
        "account_category": data["category"],
        "zone": data["zone"],
        "meter_id": data["meter_id"],
        "prepaid": data["kind"] == "prepaid",
    }


def _as_item(account: Account) -> dict[str, Any]:
    return {"account_number": account.account_number, "customer_name": account.customer_name,
            "kind": account.kind, "category": account.category, "zone": account.zone,
            "meter_id": account.meter_id}


@step("account.identify", outcomes={"one", "several", "unknown"})
def identify(ctx: StepContext, deps: Deps) -> StepResult:
    """Find the accounts of the calling number (our links, then the billing register)."""
    msisdn = ctx.user_id
    registered = {a.account_number: a for a in deps.billing.accounts_for_phone(msisdn)}
    for number in registered:
        deps.links.link(msisdn, number, "billing")
    accounts: list[Account] = []
    for link in deps.links.accounts_for(msisdn):
        accounts.append(registered.get(link.account_number) or deps.billing.account(link.account_number))
    language = deps.preferences.language(msisdn) or (accounts[0].language if accounts else None)
    if not accounts:
        return StepResult("unknown", {"linked": False, "account_count": 0}, language=language)
    data: dict[str, Any] = {"linked": True, "account_count": len(accounts),
                            "accounts": [_as_item(a) for a in accounts]}
    if len(accounts) == 1:
        data.update(account_fields(accounts[0]))
        return StepResult("one", data, language=language)
    return StepResult("several", data, language=language)


@step("account.select", outcomes={"ok"})
def select(ctx: StepContext, deps: Deps) -> StepResult:
    """Make the account picked from the list the current one."""
    chosen = ctx.data.get("selected_account")
    if not isinstance(chosen, dict):
        return StepResult("not_found")
    return StepResult("ok", account_fields(chosen))


@step("account.link", outcomes={"ok", "mismatch", "locked"})
def link(ctx: StepContext, deps: Deps) -> StepResult:
    """Link an account to an unknown number after checking the amount of its last bill."""
    attempts = int(ctx.data.get("link_attempts", 0)) + 1
    if attempts > MAX_LINK_ATTEMPTS:
        return StepResult("locked", {"link_attempts": attempts})
    throttle_key = f"link:{ctx.user_id}"
    if deps.throttle is not None and not deps.throttle.hit(throttle_key, MAX_LINK_ATTEMPTS_PER_DAY, 86_400):
        return StepResult("locked", {"link_attempts": attempts})
    number = str(ctx.data.get("link_account_number", ""))
    amount = Decimal(str(ctx.data.get("link_last_bill", "0")))
    account = deps.billing.account(number)
    if not deps.billing.verify_last_bill(number, amount):
        return StepResult("mismatch", {"link_attempts": attempts})
    deps.links.link(ctx.user_id, number, "self-service")
    if deps.throttle is not None:
        deps.throttle.reset(throttle_key)
    data = {"linked": True, "account_count": 1, "accounts": [_as_item(account)], "link_attempts": None,
            **account_fields(account)}
    return StepResult("ok", data)
