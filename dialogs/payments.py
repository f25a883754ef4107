"""Paying by mobile money: the outstanding balance or a chosen amount, and prepaid credit.

The flow (``config/menus/payments.yaml``): ``payments.start`` looks at the account, the
customer picks or types an amount (``payments.full`` / ``payments.check_amount``), confirms,
passes the PIN gate, and ``payments.initiate`` writes our ledger row *before* asking the
provider, so a payment is never lost between the two. The provider's answer arrives later
at ``POST /payments/callback`` (``channels/payment_callback.py``). ``payments.recent`` lists
the customer's last payments from our ledger.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.masking import mask
from engine.steps import StepContext, StepResult

from .backends import FINAL_PAYMENT_STATUSES, BackendUnavailable, Conflict, Rejected
from .registry import Deps, step
from .security import pin_passed
from .stores import LocalPayment

__all__ = ["MAX_AMOUNT", "MIN_AMOUNT", "PROTECTED_NODE", "idempotency_key", "token_groups"]

log = logging.getLogger("dialogs.payments")

MIN_AMOUNT = Decimal(100)
MAX_AMOUNT = Decimal(2_000_000)
PROTECTED_NODE = "pay_initiate"   # the node behind the PIN gate (route in config/menus/security.yaml)


def _whole(value: Any) -> Decimal | None:
    """A whole, positive amount of XOF, or None."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount != amount.to_integral_value() or amount < 0:
        return None
    return amount.quantize(Decimal(1))


def _in_range(amount: Decimal) -> bool:
    return MIN_AMOUNT <= amount <= MAX_AMOUNT


def idempotency_key(session_key: str, node: str, purpose: str, account_number: str, amount: Decimal) -> str:
    """Our key for one payment: the same session, node and payment give the same key, so a replayed
    hop (or a retry after the provider was unreachable) reuses the ledger row and never charges twice."""
    raw = "|".join((session_key, node, purpose, account_number, format(amount, "f")))
    return "pay-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def token_groups(token: str | None) -> str | None:
    """The 20-digit STS token in its canonical printed form, four digits per group
    ("1234 5678 9012 3456 7890"), as it appears on every receipt and is typed on the meter's keypad.
    This is the token's own notation, not channel formatting, so the step keeps it that way."""
    if not token:
        return None
    digits = "".join(ch for ch in token if ch.isdigit())
    if len(digits) != 20:
        return token
    return " ".join(digits[i:i + 4] for i in range(0, 20, 4))


@step("payments.start", outcomes={"bill", "prepaid", "nothing_due", "no_account"})
def start(ctx: StepContext, deps: Deps) -> StepResult:
    """Where the Pay journey begins: prepaid credit, or the balance of a postpaid account."""
    number = ctx.data.get("account_number")
    if not number:
        return StepResult("no_account")
    cleared: dict[str, Any] = {"pay_amount": None, "pay_amount_input": None, "pay_reference": None}
    if ctx.data.get("account_kind") == "prepaid":
        return StepResult("prepaid", {**cleared, "pay_purpose": "prepaid"})
    found = deps.billing.balance(str(number))
    data = {**cleared, "pay_purpose": "bill", "balance": str(found.amount), "unpaid_bills": found.unpaid_bills,
            "has_balance": found.amount > 0}
    return StepResult("bill" if found.amount > 0 else "nothing_due", data)


@step("payments.full", outcomes={"ok", "nothing_due", "out_of_range"})
def full(ctx: StepContext, deps: Deps) -> StepResult:
    """Pay the whole outstanding balance (read again: it may have changed since the menu)."""
    found = deps.billing.balance(str(ctx.data.get("account_number", "")))
    amount = _whole(found.amount)
    data: dict[str, Any] = {"balance": str(found.amount), "has_balance": found.amount > 0}
    if found.amount <= 0:
        return StepResult("nothing_due", data)
    if amount is None or not _in_range(amount):
        return StepResult("out_of_range", data)
    return StepResult("ok", {**data, "pay_amount": str(amount), "pay_purpose": "bill"})


@step("payments.check_amount", outcomes={"ok", "above_balance", "nothing_due", "out_of_range"})
def check_amount(ctx: StepContext, deps: Deps) -> StepResult:
    """Check the typed amount of a bill payment: 100 to 2 000 000 XOF, whole, not above the balance."""
    amount = _whole(ctx.data.get("pay_amount_input"))
    if amount is None or not _in_range(amount):
        return StepResult("out_of_range")
    found = deps.billing.balance(str(ctx.data.get("account_number", "")))
    data: dict[str, Any] = {"balance": str(found.amount), "has_balance": found.amount > 0}
    if found.amount <= 0:
        return StepResult("nothing_due", data)
    if amount > found.amount:
        return StepResult("above_balance", data)
    return StepResult("ok", {**data, "pay_amount": str(amount), "pay_purpose": "bill"})


@step("payments.check_credit", outcomes={"ok", "out_of_range"})
def check_credit(ctx: StepContext, deps: Deps) -> StepResult:
    """Check the typed amount of a prepaid purchase: 100 to 2 000 000 XOF, whole."""
    amount = _whole(ctx.data.get("pay_amount_input"))
    if amount is None or not _in_range(amount):
        return StepResult("out_of_range")
    return StepResult("ok", {"pay_amount": str(amount), "pay_purpose": "prepaid"})


@step("payments.initiate", outcomes={"started", "refused", "pin_required"})
def initiate(ctx: StepContext, deps: Deps) -> StepResult:
    """Record the payment in our ledger, then ask the provider to start it (PIN-protected)."""
    assert deps.ledger is not None and deps.payments is not None
    if not pin_passed(ctx, PROTECTED_NODE):
        return StepResult("pin_required", {"pin_verified": None})
    amount = _whole(ctx.data.get("pay_amount"))
    number = str(ctx.data.get("account_number") or "")
    purpose = str(ctx.data.get("pay_purpose") or "bill")
    if amount is None or not _in_range(amount) or not number:
        return StepResult("refused", {"pin_verified": None})
    key = idempotency_key(ctx.session_key, PROTECTED_NODE, purpose, number, amount)
    # The ledger row comes first: whatever happens next, the payment is on record.
    deps.ledger.create(idempotency_key=key, msisdn=ctx.user_id, account_number=number, purpose=purpose,
                       amount=amount, language=ctx.language)
    done: dict[str, Any] = {"pin_verified": None, "pay_key": key}
    try:
        intent = deps.payments.initiate(account_number=number, msisdn=ctx.user_id, amount=amount,
                                        purpose=purpose, idempotency_key=key,
                                        callback_url=deps.settings.payment_callback_url)
    except BackendUnavailable as exc:
        # The ledger keeps it as "created": nothing was charged; the same key is safe to retry.
        log.warning("payment not started (provider unreachable) user=%s account=%s: %s",
                    mask(ctx.user_id), mask(number), type(exc).__name__)
        return StepResult("backend_down", done)
    except (Rejected, Conflict) as exc:
        log.warning("payment refused by the provider user=%s account=%s: %s",
                    mask(ctx.user_id), mask(number), type(exc).__name__)
        return StepResult("refused", done)
    deps.ledger.mark_pending(key, intent.payment_id)
    log.info("payment started user=%s account=%s purpose=%s", mask(ctx.user_id), mask(number), purpose)
    return StepResult("started", {**done, "pay_reference": intent.payment_id})


def _item(payment: LocalPayment) -> dict[str, Any]:
    created = payment.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)   # the ledger stores UTC
    return {
        "amount": format(payment.amount, "f"),
        "status": payment.status,
        "purpose": payment.purpose,
        "account_number": payment.account_number,
        "reference": payment.reference,
        "payment_id": payment.provider_payment_id,
        "token": token_groups(payment.token),
        "failure_reason": payment.failure_reason,
        "created_at": created.isoformat() if created else None,
    }


@step("payments.recent", outcomes={"ok", "none"})
def recent(ctx: StepContext, deps: Deps) -> StepResult:
    """The customer's last payments from our ledger (every status, token of prepaid purchases)."""
    assert deps.ledger is not None
    items = [_item(p) for p in deps.ledger.recent(ctx.user_id, limit=5)]
    return StepResult("ok" if items else "none", {"pay_list": items, "pay_item": None})


# ---------------------------------------------------------------- the provider's answer
FINAL_STATUSES = FINAL_PAYMENT_STATUSES


def settle_provider_result(deps: Deps, *, event_id: str, payment_id: str, status: str, reference: str | None,
                           token: str | None, failure_reason: str | None) -> tuple[LocalPayment | None, bool]:
    """Apply the provider's word on a payment to our ledger (once per ``event_id``) and queue the
    customer's SMS (receipt or failure notice). Returns the payment (None if unknown) and whether
    this call changed it.

    The SMS is queued for every final payment, not only when this call changed it: the outbox keeps
    one event per payment and status, so a duplicate adds nothing, and a receipt lost to a crash
    between the two writes is queued by the provider's retry.
    """
    assert deps.ledger is not None and deps.outbox is not None, "Deps.ledger and Deps.outbox are not wired"
    payment, changed = deps.ledger.settle(event_id=event_id, provider_payment_id=payment_id, status=status,
                                          reference=reference, token=token, failure_reason=failure_reason)
    if payment is not None and payment.status in FINAL_STATUSES:
        # The receipt speaks the language the customer confirmed the payment in.
        language = payment.language
        kind = "payment_receipt" if payment.status == "succeeded" else "payment_failed"
        payload = {"payment_id": payment.provider_payment_id, "reference": payment.reference,
                   "amount": format(payment.amount, "f"), "account_number": payment.account_number,
                   "purpose": payment.purpose, "token": payment.token, "failure_reason": payment.failure_reason}
        deps.outbox.add(kind=kind, msisdn=payment.msisdn, language=language, payload=payload,
                        dedupe_key=f"payment:{payment.provider_payment_id}:{payment.status}")
    return payment, changed
