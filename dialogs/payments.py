"""Paying by mobile money: the outstanding balance or a chosen amount, and prepaid credit.

The flow (``config/menus/payments.yaml``): ``payments.start`` looks at the account, the
customer picks or types an amount (``payments.full`` / ``payments.check_amount``), confirms,
passes the PIN gate, and ``payments.initiate`` writes our ledger row *before* asking the
provider, so a payment is never lost between the two. The provider's answer arrives later
at ``POST /payments/callback`` (``channels/payment_callback.py``); when it never does, the
worker asks the provider (``reconcile_pending``) and settles through the same path. A result is
applied only when it matches the ledger (payment id, amount, currency, account, number) and only
from ``pending``; anything else is kept for an agent and audited. ``payments.recent`` lists the
last payments the number made to the current account, from our ledger.

When our database fails just after the provider started a payment (the provider's id cannot be written),
the customer is still told it started, with its reference; the row stays ``created`` under our idempotency
key, which the provider echoes, so its callback (or the worker asking by that key) records it then. Until
then it counts as on its way, as a pending one does (``AWAITED_STATUSES``): the balance and the Pay menu
never offer to pay it twice. One the provider never got (unreachable when asked to start it, the customer
told nothing was charged) or says it has no trace of is ``not_started`` and counts no more; one the worker
could not resolve by ``PAYMENT_UNRECORDED_GIVE_UP_SECONDS`` is ``unresolved``: audited, counted, for an agent.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.masking import mask, mask_numbers
from engine.security_audit import SecurityEvent
from engine.steps import StepContext, StepResult

from .backends import FINAL_PAYMENT_STATUSES, BackendError, BackendUnavailable, Conflict, NotSent, Rejected
from .registry import Deps, step
from .security import pin_passed
from .stores import UNRECORDED_STATUSES, LocalPayment, ProviderResult

# Each step is marked by ``step(...)(function)`` after its definition, not by a decorator: mutmut
# (``make mutation``) leaves decorated functions unmutated, and these steps are the money and identity
# paths it guards.
__all__ = [
    "MAX_AMOUNT",
    "MAX_ASK_INTERVAL_SECONDS",
    "MAX_STATUS_CHECKS",
    "MIN_AMOUNT",
    "PROTECTED_NODE",
    "REFUSAL_CODES",
    "TOKEN_OWED",
    "KeyAnswer",
    "Settlement",
    "ask_by_key",
    "back_office_payment_id",
    "idempotency_key",
    "notify_payment",
    "on_their_way",
    "post_owed_to_billing",
    "post_to_billing",
    "reconcile_pending",
    "settle_by_agent",
    "settle_provider_result",
]

log = logging.getLogger("dialogs.payments")

MIN_AMOUNT = Decimal(100)
MAX_AMOUNT = Decimal(2_000_000)
PROTECTED_NODE = "pay_initiate"   # the node behind the PIN gate (route in config/menus/security.yaml)
MAX_STATUS_CHECKS = 5             # status questions to the provider before a payment is "unconfirmed"
# The longest wait between two questions about a payment without the provider's id (the waits double up to it).
MAX_ASK_INTERVAL_SECONDS = 3600
# Why a provider refuses a payment, as the customer is told (labels in config/menus.yaml);
# any other code reads as "refused".
REFUSAL_CODES = frozenset({"insufficient_funds", "wallet_limit_exceeded", "wallet_not_found",
                           "declined_by_customer", "not_received"})   # the last: an agent's "not paid"


def _whole(value: Any) -> Decimal | None:
    """A whole amount of XOF in plain notation ("1e3" is 1000), or None. Its sign is left to
    ``_in_range``, which every caller applies (no payment is below ``MIN_AMOUNT``)."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount != amount.to_integral_value():
        return None
    return amount.quantize(Decimal(1))


def _in_range(amount: Decimal) -> bool:
    return MIN_AMOUNT <= amount <= MAX_AMOUNT


def idempotency_key(conversation: str, node: str, purpose: str, account_number: str, amount: Decimal,
                    wallet: str) -> str:
    """Our key for one payment: the same conversation (``StepContext.conversation_id``), node and payment give
    the same key, so a replayed hop (or a retry after the provider was unreachable) reuses the ledger row and
    never charges twice; a purchase in a later conversation (by SMS: the same sender) is a new payment."""
    raw = "|".join((conversation, node, purpose, account_number, format(amount, "f"), wallet))
    return "pay-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def _wallets(deps: Deps) -> list[dict[str, str]]:
    """The operators the customer may pay with, from configuration, as the wallet menu lists them."""
    return [{"code": code, "name": name} for code, name in deps.settings.wallets]


def on_their_way(ctx: StepContext, deps: Deps, number: str, purpose: str) -> list[LocalPayment]:
    """The account's payments of ``purpose`` on their way (``PaymentLedger.awaiting``: the back end's balance
    counts them only once settled), from any number or conversation, this one's included: the balance and the
    Pay menu say the same (``dialogs/billing.py`` reads them here too).

    But one: a payment this conversation started that the session does not know it started (its ``pay_key``
    is not the payment's). That is a hop walked again from the gateway's text after the session was lost,
    which must find the same payment again (its key), not an account already paid."""
    if deps.ledger is None:
        return []
    known = ctx.data.get("pay_key")
    return [p for p in deps.ledger.awaiting(number, purpose)
            if p.idempotency_key == known
            or p.idempotency_key != idempotency_key(ctx.conversation_id, PROTECTED_NODE, purpose, number, p.amount,
                                                    p.wallet or "")]


def _due(ctx: StepContext, deps: Deps, number: str) -> tuple[Decimal, Decimal, dict[str, Any]]:
    """What may still be paid on a postpaid account: the back end's balance less our bill payments on their
    way (``PaymentLedger.awaiting``: the balance counts them only once settled); the amount awaited; and the
    data the screens read (``balance`` is what may still be paid).

    A payment this conversation started is counted once the session knows it started it; a hop walked again
    from the gateway's text after the session was lost finds the same payment instead (``on_their_way``)."""
    found = deps.billing.balance(number)
    awaited = sum((p.amount for p in on_their_way(ctx, deps, number, "bill")), Decimal(0))
    due = found.amount - awaited
    return due, awaited, {"balance": str(due), "has_balance": found.amount > 0, "unpaid_bills": found.unpaid_bills,
                          "pay_awaiting": str(awaited) if awaited > 0 else None}


def _nothing_more(awaited: Decimal) -> str:
    """Nothing may be paid: nothing is owed, or a payment on its way pays it all."""
    return "awaiting" if awaited > 0 else "nothing_due"


def start(ctx: StepContext, deps: Deps) -> StepResult:
    """Where the Pay journey begins: prepaid credit, or what may still be paid on a postpaid account."""
    number = ctx.data.get("account_number")
    if not number:
        return StepResult("no_account")
    cleared: dict[str, Any] = {"pay_amount": None, "pay_amount_input": None, "pay_reference": None,
                               "pay_wallet": None, "pay_refusal": None, "pay_wallets": _wallets(deps)}
    if ctx.data.get("account_kind") == "prepaid":
        # A purchase on its way is said before the customer buys again (its token comes only once settled).
        awaited = sum((p.amount for p in on_their_way(ctx, deps, str(number), "prepaid")), Decimal(0))
        return StepResult("prepaid_awaiting" if awaited > 0 else "prepaid",
                          {**cleared, "pay_purpose": "prepaid", "prepaid_awaiting": str(awaited) if awaited else None})
    due, awaited, data = _due(ctx, deps, str(number))
    data = {**cleared, "pay_purpose": "bill", **data}
    if due <= 0:
        return StepResult(_nothing_more(awaited), data)
    return StepResult("bill_awaiting" if awaited > 0 else "bill", data)


step("payments.start", outcomes={"bill", "bill_awaiting", "prepaid", "prepaid_awaiting", "nothing_due", "awaiting",
                                 "no_account"})(start)


def full(ctx: StepContext, deps: Deps) -> StepResult:
    """Pay all that may still be paid (read again: it may have changed since the menu)."""
    due, awaited, data = _due(ctx, deps, str(ctx.data.get("account_number", "")))
    amount = _whole(due)
    if due <= 0:
        return StepResult(_nothing_more(awaited), data)
    if amount is None or not _in_range(amount):
        return StepResult("out_of_range", data)
    return StepResult("ok", {**data, "pay_amount": str(amount), "pay_purpose": "bill"})


step("payments.full", outcomes={"ok", "nothing_due", "awaiting", "out_of_range"})(full)


def check_amount(ctx: StepContext, deps: Deps) -> StepResult:
    """Check the typed amount of a bill payment: 100 to 2 000 000 XOF, whole, not above what may still be paid."""
    amount = _whole(ctx.data.get("pay_amount_input"))
    if amount is None or not _in_range(amount):
        return StepResult("out_of_range")
    due, awaited, data = _due(ctx, deps, str(ctx.data.get("account_number", "")))
    if due <= 0:
        return StepResult(_nothing_more(awaited), data)
    if amount > due:
        return StepResult("above_balance", data)
    return StepResult("ok", {**data, "pay_amount": str(amount), "pay_purpose": "bill"})


step("payments.check_amount", outcomes={"ok", "above_balance", "nothing_due", "awaiting",
                                        "out_of_range"})(check_amount)


def check_credit(ctx: StepContext, deps: Deps) -> StepResult:
    """Check the typed amount of a prepaid purchase: 100 to 2 000 000 XOF, whole. The same amount as a
    purchase still being confirmed for the meter is ``same_awaiting``: most likely the customer, not seeing
    the token yet, buying twice; the screen asks before going on."""
    amount = _whole(ctx.data.get("pay_amount_input"))
    if amount is None or not _in_range(amount):
        return StepResult("out_of_range")
    data = {"pay_amount": str(amount), "pay_purpose": "prepaid"}
    number = str(ctx.data.get("account_number") or "")
    if number and any(p.amount == amount for p in on_their_way(ctx, deps, number, "prepaid")):
        return StepResult("same_awaiting", data)
    return StepResult("ok", data)


step("payments.check_credit", outcomes={"ok", "same_awaiting", "out_of_range"})(check_credit)


def initiate(ctx: StepContext, deps: Deps) -> StepResult:
    """Record the payment in our ledger, then ask the provider to start it (PIN-protected)."""
    assert deps.ledger is not None and deps.payments is not None, "Deps.ledger and Deps.payments are not wired"
    if not pin_passed(ctx, PROTECTED_NODE):
        return StepResult("pin_required", {"pin_verified": None})
    amount = _whole(ctx.data.get("pay_amount"))
    number = str(ctx.data.get("account_number") or "")
    purpose = str(ctx.data.get("pay_purpose") or "bill")
    if amount is None or not _in_range(amount) or not number:
        return StepResult("refused", {"pin_verified": None, "pay_refusal": _refusal(None)})
    chosen = ctx.data.get("pay_wallet")
    wallet = chosen.get("code") if isinstance(chosen, dict) else None
    if wallet not in [code for code, _ in deps.settings.wallets]:
        return StepResult("refused", {"pin_verified": None, "pay_refusal": _refusal(None)})
    wallet = str(wallet)   # one of the configured operators' codes
    key = idempotency_key(ctx.conversation_id, PROTECTED_NODE, purpose, number, amount, wallet)
    if purpose == "bill" and deps.ledger.get(key) is None:
        # The balance may have changed since the customer confirmed (another payment, a new bill):
        # never start a payment above what is owed now. A replayed hop (key on record) skips this.
        # Payments on their way count as paid: two sessions (or two numbers) never pay one balance twice.
        try:
            due, _, data = _due(ctx, deps, number)
        except BackendUnavailable:
            # Not knowing what is owed, start nothing: the customer is told to try again.
            return StepResult("backend_down", {"pin_verified": None})
        if amount > due:
            return StepResult("above_balance", {**data, "pin_verified": None})
    # The ledger row comes first: whatever happens next, the payment is on record.
    deps.ledger.create(idempotency_key=key, msisdn=ctx.user_id, account_number=number, purpose=purpose,
                       amount=amount, language=ctx.language, wallet=wallet)
    done: dict[str, Any] = {"pin_verified": None, "pay_key": key, "pay_refusal": None}
    try:
        intent = deps.payments.initiate(account_number=number, msisdn=ctx.user_id, amount=amount,
                                        purpose=purpose, idempotency_key=key,
                                        callback_url=deps.settings.payment_callback_url, wallet=wallet)
    except NotSent as exc:
        # The request never reached the provider: nothing started, as the customer is told. It no longer
        # counts as on its way (it would block paying again); the same key is safe to retry, and counts again.
        log.warning("payment not started (provider unreachable) user=%s account=%s: %s",
                    mask(ctx.user_id), mask(number), type(exc).__name__)
        deps.ledger.mark_not_started(key)
        return StepResult("backend_down", done)
    except BackendUnavailable as exc:
        # It may have reached the provider (a read timeout, a 5xx): it stays "created", counted as on its
        # way, and the customer is told to approve a prompt if one comes; the worker asks the provider by
        # our key and records it, or finds it never started (then it counts no more).
        log.warning("payment maybe started (no answer from the provider) user=%s account=%s: %s",
                    mask(ctx.user_id), mask(number), type(exc).__name__)
        return StepResult("unsure", done)
    except (Rejected, Conflict) as exc:
        code = exc.code if isinstance(exc, Rejected) else None   # a Conflict is told as "refused"
        log.warning("payment refused by the provider user=%s account=%s: %s %s",
                    mask(ctx.user_id), mask(number), type(exc).__name__, code)
        deps.ledger.mark_refused(key, _refusal(code))
        return StepResult("refused", {**done, "pay_refusal": _refusal(code)})
    try:
        deps.ledger.mark_pending(key, intent.payment_id)
    except Exception as exc:  # noqa: BLE001 - our database failed, not the payment: it is started all the same
        _unrecorded(ctx, deps, number, intent.payment_id, exc)
    else:
        log.info("payment started user=%s account=%s purpose=%s", mask(ctx.user_id), mask(number), purpose)
    return StepResult("started", {**done, "pay_reference": intent.payment_id})


def _unrecorded(ctx: StepContext, deps: Deps, number: str, payment_id: str, exc: Exception) -> None:
    """The provider started the payment (its prompt is on the customer's phone) but our ledger could not
    record its id (a lock or statement timeout, the database gone). The customer is told the truth, that it
    is started, with its reference; the row stays ``created`` under our key, which the provider echoes in its
    callback and answers by, so the callback or the worker's question records it then (``_found_by_key``)."""
    log.error("payment started but its id not recorded user=%s account=%s payment=%s: %s; the callback or the "
              "worker finds it by its key", mask(ctx.user_id), mask(number), payment_id, type(exc).__name__)
    deps.security.record(SecurityEvent(kind="payment_unrecorded", channel=ctx.channel, subject=ctx.user_id,
                                       account=number, detail="provider started it; ledger write failed",
                                       extra={"payment_id": payment_id}))


step("payments.initiate", outcomes={"started", "refused", "pin_required", "above_balance", "backend_down",
                                    "unsure"})(initiate)


def _refusal(code: str | None) -> str:
    """The refusal code the customer is told about (a label in config/menus.yaml)."""
    return code if code in REFUSAL_CODES else "payment_refused"


# What the customer's history says of a payment without the provider's id (labels in config/menus.yaml):
# one that may have started is waiting for confirmation, one left to an agent unconfirmed, and one the
# provider never got "not started" (the label of ``created``).
_SHOWN_AS = {"created": "pending", "unresolved": "unconfirmed", "not_started": "created", "unanswered": "created"}


def _created_at(payment: LocalPayment) -> datetime | None:
    created = payment.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)   # the ledger stores UTC
    return created


def _item(payment: LocalPayment) -> dict[str, Any]:
    created = _created_at(payment)
    return {
        "amount": format(payment.amount, "f"),
        "status": _SHOWN_AS.get(payment.status, payment.status),
        "purpose": payment.purpose,
        "account_number": payment.account_number,
        "reference": payment.reference,
        "payment_id": payment.provider_payment_id or "-",   # "-": refused before the provider gave one
        "token": payment.token,   # as the provider wrote it: {pay_item_token:token} groups it
        "failure_reason": _refusal(payment.failure_reason) if payment.status == "failed" else None,
        "created_at": created.isoformat() if created else None,
    }


def recent(ctx: StepContext, deps: Deps) -> StepResult:
    """The last payments this number made to the current account, from our ledger (every status, token of
    prepaid purchases). Not another account's (each screen is about one account), nor another number's:
    their receipts and tokens are the payer's; the balance and bills show what they paid."""
    assert deps.ledger is not None
    number = str(ctx.data.get("account_number") or "")
    items = [_item(p) for p in deps.ledger.recent(ctx.user_id, limit=5, account_number=number)]
    return StepResult("ok" if items else "none", {"pay_list": items, "pay_item": None})


step("payments.recent", outcomes={"ok", "none"})(recent)


def purchase_token(ctx: StepContext, deps: Deps) -> StepResult:
    """The token of the prepaid purchase picked in the last payments, under a name that says it is one
    (``pay_item_token``): a screen showing it is then read as showing a secret (``menus/secrets.py``)."""
    item = ctx.data.get("pay_item")
    return StepResult("ok", {"pay_item_token": item.get("token") if isinstance(item, dict) else None})


step("payments.purchase_token", outcomes={"ok"})(purchase_token)


# ---------------------------------------------------------------- the provider's answer
FINAL_STATUSES = FINAL_PAYMENT_STATUSES
# A payment owing a token (``LocalPayment.vend``): its receipt waits for the token.
TOKEN_OWED = frozenset({"due", "refused"})


@dataclass(frozen=True, slots=True)
class Settlement:
    """What applying a provider result did. ``payment`` is None for an unknown payment; ``mismatch``
    lists what disagreed with the ledger (the result was kept for an agent, nothing applied); ``kept``: that
    result is the last word the provider owes us (the customer is told it is being checked)."""

    payment: LocalPayment | None
    changed: bool
    mismatch: tuple[str, ...] = ()
    # The provider's word on a payment we started that came after it was settled otherwise (an agent's "not
    # paid", then the customer's late approval): kept for an agent, and the provider may stop sending it.
    kept: bool = False


def _mismatches(payment: LocalPayment, result: ProviderResult) -> list[str]:
    """The fields of ``result`` that disagree with what the customer confirmed."""
    found = []
    if result.amount is None or result.amount != payment.amount:
        found.append("amount")
    # The ledger's currency, account and number are never empty: a missing one disagrees too.
    if result.currency != payment.currency:
        found.append("currency")
    if result.account_number != payment.account_number:
        found.append("account_number")
    if result.msisdn != payment.msisdn:
        found.append("msisdn")
    return found


def _refuse(deps: Deps, payment: LocalPayment, result: ProviderResult, reasons: list[str]) -> Settlement:
    assert deps.ledger is not None
    deps.ledger.keep_mismatch(result, reasons)
    deps.security.record(SecurityEvent(kind="callback_mismatch", channel=f"payment_{result.source}",
                                       subject=payment.msisdn, account=payment.account_number,
                                       detail="disagrees on " + ",".join(reasons)))
    log.warning("payment result kept for an agent payment=%s source=%s: %s", result.payment_id, result.source,
                ",".join(reasons))
    return Settlement(payment, False, tuple(reasons))


def settle_provider_result(deps: Deps, result: ProviderResult) -> Settlement:
    """Apply the provider's word on a payment to our ledger (once per ``event_id``, only when it matches
    what the customer confirmed, only from ``pending``) and queue the customer's SMS (receipt or
    failure notice). A callback and the worker's status answer both come here.

    The SMS is queued for every final payment, not only when this call changed it: the outbox keeps
    one event per payment and status, so a duplicate adds nothing, and a receipt lost to a crash
    between the two writes is queued by the provider's retry.
    """
    assert deps.ledger is not None and deps.outbox is not None, "Deps.ledger and Deps.outbox are not wired"
    known = deps.ledger.by_provider_id(result.payment_id)
    if known is None:
        found = _found_by_key(deps, result)
        if isinstance(found, Settlement):
            return found
        known = found
    if known is None:
        return Settlement(None, False)
    reasons = _mismatches(known, result)
    if reasons:
        return _refuse(deps, known, result, reasons)
    # An agent's "paid" reaches billing from here (the provider's own approval reaches it on its side); it is
    # marked owed to billing in the same write, so a billing outage never loses it (``post_to_billing``).
    owed = result.source == "agent" and result.status == "succeeded" and known.purpose == "bill"
    # An agent's "paid" on a prepaid purchase brings no token (the provider's approval carries one): it is marked
    # owed in the same write, and the receipt goes with the token once vended (``dialogs/vending.py``).
    owes_token = (result.source == "agent" and result.status == "succeeded" and known.purpose == "prepaid"
                  and not result.token)
    payment, changed = deps.ledger.settle(event_id=result.event_id, provider_payment_id=result.payment_id,
                                          status=result.status, reference=result.reference, token=result.token,
                                          failure_reason=result.failure_reason, post_to_billing=owed,
                                          owes_token=owes_token)
    if payment is None:
        return Settlement(None, False)
    if not changed and payment.status != result.status:
        # Already final the other way (or not pending at all): a second opinion is never applied.
        return _refuse(deps, payment, result, ["status"])
    if payment.status in FINAL_STATUSES and payment.vend not in TOKEN_OWED:
        notify_payment(deps, payment, payment.status)
    return Settlement(payment, changed)


def _found_by_key(deps: Deps, result: ProviderResult) -> LocalPayment | Settlement | None:
    """A payment the provider started whose id our ledger never recorded (``_unrecorded``), found by the key
    the provider echoes: its id is recorded now (``created -> pending``), when the result matches what the
    customer confirmed; a result that disagrees is kept for an agent, and nothing recorded. None when the key
    is unknown; a payment already settled under another id is ``_late_word``."""
    assert deps.ledger is not None
    if not result.idempotency_key:
        return None
    payment = deps.ledger.get(result.idempotency_key)
    if payment is None:
        return None
    if payment.status not in UNRECORDED_STATUSES or payment.provider_payment_id is not None:
        return _late_word(deps, payment, result)
    reasons = _mismatches(payment, result)
    if reasons:
        return _refuse(deps, payment, result, reasons)
    recorded = deps.ledger.record_provider_id(payment.idempotency_key, result.payment_id)
    if recorded is not None:
        log.warning("payment %s recorded late, found by its key (source=%s)", result.payment_id, result.source)
    return recorded


def _late_word(deps: Deps, payment: LocalPayment, result: ProviderResult) -> Settlement | None:
    """The provider's word, by our key, on a payment we started that already has another id (an agent
    settled it as not paid under ``none-<key>``, then the customer approved late): never applied, never lost.
    Kept for an agent under the ledger's id (the console lists it with the payment), audited, and the
    customer told by SMS that the money was received and is being checked. None when it agrees (nothing to
    keep) or is not final.

    An approval of a payment an agent already settled as paid under another reference (the receipt's, not the
    provider's payment id) is a second word on the same money: never applied (a prepaid purchase is vended or
    owed its token once, under our key), kept for an agent and audited; the customer, who had the receipt or
    is told the code follows, is not told again."""
    assert deps.ledger is not None and deps.outbox is not None
    if result.status not in FINAL_STATUSES:
        return None
    again = result.status == payment.status
    if again and result.status != "succeeded":
        return Settlement(payment, False)
    reasons = ["payment_id", *([] if again else ["status"]), *_mismatches(payment, result)]
    deps.ledger.keep_mismatch(result, reasons, under=payment.provider_payment_id or payment.idempotency_key)
    deps.security.record(SecurityEvent(
        kind="callback_after_settlement", channel=f"payment_{result.source}", subject=payment.msisdn,
        account=payment.account_number, detail=f"provider says {result.status} after {payment.status}; kept",
        extra={"amount": format(payment.amount, "f"), "provider_payment_id": result.payment_id[:64]}))
    log.error("payment of account %s: the provider says %s after it was settled %s; kept for an agent",
              mask(payment.account_number), result.status, payment.status)
    if result.status == "succeeded" and not again:
        deps.outbox.add(kind="payment_under_review", msisdn=payment.msisdn, language=payment.language,
                        payload={"amount": format(payment.amount, "f"), "account_number": payment.account_number,
                                 "reference": result.reference, "purpose": payment.purpose},
                        dedupe_key=f"payment:{result.payment_id}:under_review")
    return Settlement(payment, False, tuple(reasons), kept=True)


def back_office_payment_id(payment: LocalPayment) -> str:
    """The payment's id as billing and the vending system know it: the provider's (ours when it has none); their
    ids are short, so a long reference goes under a stable digest."""
    payment_id = payment.provider_payment_id or payment.idempotency_key
    if len(payment_id) > 40:
        payment_id = "REF-" + hashlib.sha256(payment_id.encode()).hexdigest()[:32]
    return payment_id


def post_to_billing(deps: Deps, payment: LocalPayment, by: str) -> str:
    """Post an agent's "paid" to billing (the customer's balance no longer shows it due): ``posted``,
    ``refused`` (billing will never take it: audited, for an agent) or ``unavailable`` (kept ``due``, the
    worker posts it again; billing counts one payment id once, so a repeat is harmless)."""
    assert deps.ledger is not None
    payment_id = back_office_payment_id(payment)
    try:
        deps.billing.post_payment(payment.account_number, payment_id=payment_id, amount=payment.amount,
                                  currency=payment.currency, reference=payment.reference,
                                  idempotency_key=f"post-{payment.idempotency_key}",
                                  payment_key=payment.idempotency_key)
    except BackendUnavailable as exc:
        log.warning("payment of account %s not posted to billing yet (%s): the worker retries",
                    mask(payment.account_number), type(exc).__name__)
        return "unavailable"
    except BackendError as exc:
        said = _billing_refusal(exc)
        deps.ledger.mark_billing(payment.idempotency_key, "refused", said)
        deps.security.record(SecurityEvent(
            kind="payment_billing_refused", channel=by, subject=payment.msisdn, account=payment.account_number,
            detail=f"billing refused the agent's settlement: {said}"[:200],
            extra={"amount": format(payment.amount, "f"), "payment_id": payment_id}))
        log.error("payment of account %s refused by billing: left to an agent", mask(payment.account_number))
        return "refused"
    deps.ledger.mark_billing(payment.idempotency_key, "posted")
    deps.security.record(SecurityEvent(
        kind="payment_posted_to_billing", channel=by, subject=payment.msisdn, account=payment.account_number,
        detail="an agent's settlement recorded by billing",
        extra={"amount": format(payment.amount, "f"), "payment_id": payment_id}))
    return "posted"


def _billing_refusal(exc: BackendError) -> str:
    """What billing said refusing a post, for the supervisor who reads it: its code and message, long numbers
    masked (an account number in its message is the customer's)."""
    code = exc.code if isinstance(exc, Rejected) and exc.code else type(exc).__name__
    return mask_numbers(f"{code}: {exc}" if str(exc) else code)[:200]


def post_owed_to_billing(deps: Deps) -> int:
    """The worker's pass: post again each agent's "paid" billing has not recorded yet; how many it took."""
    assert deps.ledger is not None
    return sum(post_to_billing(deps, payment, "worker") == "posted"
               for payment in deps.ledger.to_post_to_billing())


def notify_payment(deps: Deps, payment: LocalPayment, status: str) -> None:
    """Queue the customer's SMS about ``payment`` (one per payment and status)."""
    assert deps.outbox is not None
    kind = "payment_receipt" if status == "succeeded" else f"payment_{status}"   # payment_failed, _unconfirmed
    payload = {"payment_id": payment.provider_payment_id, "reference": payment.reference,
               "amount": format(payment.amount, "f"), "account_number": payment.account_number,
               "purpose": payment.purpose, "token": payment.token, "failure_reason": payment.failure_reason}
    # The SMS speaks the language the customer confirmed the payment in.
    deps.outbox.add(kind=kind, msisdn=payment.msisdn, language=payment.language, payload=payload,
                    dedupe_key=f"payment:{payment.provider_payment_id}:{status}")
    if status == "succeeded":
        _tell_account_watchers(deps, payment)


def _tell_account_watchers(deps: Deps, payment: LocalPayment) -> None:
    """The alert "payment by another number": the numbers that opted in to ``payment_received`` for the account
    hear of a payment made to it from another number (the payer has the receipt). No token, no payer's number:
    those are the payer's. Only a number still linked to the account hears: a link the holder undid (a stranger's)
    leaves its subscription behind, not its right to the account's payments (as ``app/broadcast.py`` for bills)."""
    assert deps.outbox is not None
    if deps.subscriptions is None:
        return
    payload = {"amount": format(payment.amount, "f"), "account_number": payment.account_number,
               "purpose": payment.purpose, "reference": payment.reference}
    for watcher in deps.subscriptions.subscribers("payment_received", payment.account_number):
        if watcher.msisdn == payment.msisdn or not _linked(deps, watcher.msisdn, payment.account_number):
            continue
        chosen = deps.preferences.language(watcher.msisdn) if deps.preferences is not None else None
        language = chosen or watcher.language or payment.language
        deps.outbox.add(kind="payment_received", msisdn=watcher.msisdn, language=language, payload=payload,
                        dedupe_key=f"payment:{payment.provider_payment_id}:received:{_digest(watcher.msisdn)}")


def _linked(deps: Deps, msisdn: str, account_number: str) -> bool:
    return any(link.account_number == account_number for link in deps.links.accounts_for(msisdn))


def _digest(msisdn: str) -> str:
    # A number in a dedupe key would be a number in clear wherever keys are shown: a short digest says which.
    return hashlib.sha256(msisdn.encode()).hexdigest()[:16]


def reconcile_pending(deps: Deps, now: datetime, after_seconds: int, max_checks: int = MAX_STATUS_CHECKS, *,
                      give_up_seconds: int = 86_400,
                      max_interval_seconds: int = MAX_ASK_INTERVAL_SECONDS) -> dict[str, int]:
    """Ask the provider about payments pending for ``after_seconds`` without a word from it, and settle
    the final ones as a callback would. A payment still pending (or the provider unreachable) counts a
    check; after ``max_checks`` it becomes ``unconfirmed`` and the customer is told by SMS. Then the
    payments without the provider's id, by our key (``_record_unrecorded``): ``recorded``, ``never_started``,
    ``unresolved`` (given up after ``give_up_seconds``)."""
    assert deps.ledger is not None and deps.payments is not None, "Deps.ledger and Deps.payments are not wired"
    counts = {"settled": 0, "still_pending": 0, "given_up": 0, "mismatched": 0, "recorded": 0,
              "never_started": 0, "unresolved": 0, "unanswered": 0}
    for payment in deps.ledger.due_for_status(now, after_seconds):
        payment_id = str(payment.provider_payment_id)
        try:
            intent = deps.payments.status(payment_id)
        except BackendError as exc:
            log.info("status of payment %s not known yet: %s", payment_id, type(exc).__name__)
            intent = None
        if intent is not None and intent.status in FINAL_STATUSES:
            result = ProviderResult(event_id=f"status:{payment_id}:{intent.status}", payment_id=intent.payment_id,
                                    status=intent.status, amount=intent.amount, currency=intent.currency,
                                    account_number=intent.account_number, msisdn=intent.msisdn,
                                    reference=intent.reference, token=intent.token,
                                    failure_reason=intent.failure_reason, source="status")
            settled = settle_provider_result(deps, result)
            if settled.changed:
                counts["settled"] += 1
                continue
            if settled.mismatch:
                counts["mismatched"] += 1
        checks = deps.ledger.note_status_check(payment.idempotency_key, now)
        if checks < max_checks:
            counts["still_pending"] += 1
            continue
        given_up = deps.ledger.give_up(payment.idempotency_key)
        if given_up is not None:
            counts["given_up"] += 1
            log.warning("payment %s unconfirmed after %d status questions; customer told", payment_id, checks)
            notify_payment(deps, given_up, "unconfirmed")
    # After the pending ones: a payment recorded here is pending from now, asked about a full delay later.
    _record_unrecorded(deps, now, (after_seconds, max_interval_seconds, give_up_seconds), counts)
    _flag_unanswered(deps, now, give_up_seconds, counts)
    return counts


def _flag_unanswered(deps: Deps, now: datetime, give_up_seconds: int, counts: dict[str, int]) -> None:
    """A payment never sent (the customer was told nothing was charged) that the provider never answered about by
    our key all along: it may have taken it after all (a request that reached it unheard). Not asked about any
    more, so it is flagged ``unanswered`` once, audited, counted (``payments_unanswered_total``) and listed for an
    agent, who can ask the provider again or settle it."""
    assert deps.ledger is not None
    for payment in deps.ledger.flag_unanswered(now, give_up_seconds):
        counts["unanswered"] += 1
        log.error("payment of account %s never sent, and the provider never answered about it: left to an agent",
                  mask(payment.account_number))
        deps.security.record(SecurityEvent(
            kind="payment_unanswered", channel="worker", subject=payment.msisdn, account=payment.account_number,
            detail="never sent; provider never answered by our key; customer told nothing was charged",
            extra={"amount": format(payment.amount, "f"), "purpose": payment.purpose}))


def _record_unrecorded(deps: Deps, now: datetime, waits: tuple[int, int, int], counts: dict[str, int]) -> None:
    """Payments without the provider's id, due for a question (``PaymentLedger.unrecorded``: ``after_seconds``
    after they were created, then with waits doubling up to ``max_interval_seconds``): the provider is asked by
    our key (asking never starts one). One it started gets its id recorded (``pending``, then asked about as
    any other) or, already final, is settled as its callback would be; one it has no trace of is
    ``not_started`` (no longer on its way; still asked until ``give_up_seconds``, in case it turns up). One
    still ``created`` that ``give_up_seconds`` of questions did not resolve (the provider unreachable, or its
    answers disagreeing with what the customer confirmed) is ``unresolved``: audited, counted, for an agent."""
    assert deps.ledger is not None and deps.payments is not None
    after_seconds, max_interval_seconds, give_up_seconds = waits
    for payment in deps.ledger.unrecorded(now, after_seconds, max_interval_seconds, give_up_seconds):
        key = payment.idempotency_key
        answer = ask_by_key(deps, key)
        if answer.outcome != "unreachable":
            deps.ledger.note_answered(key, now)
        if answer.outcome == "unknown":
            deps.ledger.note_status_check(key, now)
            if deps.ledger.mark_not_started(key) is not None:
                counts["never_started"] += 1
                log.info("payment of account %s never started by the provider: no longer on its way",
                         mask(payment.account_number))
        elif answer.outcome in ("unreachable", "mismatch"):
            counts["mismatched"] += answer.outcome == "mismatch"   # kept for an agent; asked again until given up
            deps.ledger.note_status_check(key, now)
            _give_up_if_due(deps, payment, now, give_up_seconds, counts)
        elif answer.outcome != "moved":
            counts["recorded"] += 1
            counts["settled"] += answer.outcome == "settled"


@dataclass(frozen=True, slots=True)
class KeyAnswer:
    """What asking the provider by our key did to a payment without its id: ``unreachable`` (no answer),
    ``unknown`` (it has no payment under our key), ``mismatch`` (its answer disagrees with what the customer
    confirmed: kept for an agent), ``recorded`` (it started it: its id recorded, ``pending``), ``settled``
    (already final: applied as its callback would be), ``moved`` (our ledger moved meanwhile: nothing applied)."""

    outcome: str
    payment: LocalPayment | None = None


def ask_by_key(deps: Deps, key: str) -> KeyAnswer:
    """Ask the provider about the payment started under our ``key`` (asking never starts one) and apply its
    answer through the callback's path: the worker's question, and an agent's "ask the provider now"."""
    assert deps.ledger is not None and deps.payments is not None
    try:
        intent = deps.payments.by_key(key)
    except BackendError as exc:
        log.info("provider not asked about an unrecorded payment: %s", type(exc).__name__)
        return KeyAnswer("unreachable")
    if intent is None:
        return KeyAnswer("unknown")
    final = intent.status in FINAL_STATUSES
    result = ProviderResult(event_id=f"status:{intent.payment_id}:{intent.status}", payment_id=intent.payment_id,
                            status=intent.status, amount=intent.amount, currency=intent.currency,
                            account_number=intent.account_number, msisdn=intent.msisdn,
                            reference=intent.reference, token=intent.token, failure_reason=intent.failure_reason,
                            source="status", idempotency_key=key)
    found = settle_provider_result(deps, result) if final else _found_by_key(deps, result)
    if isinstance(found, Settlement):
        if found.mismatch:
            return KeyAnswer("mismatch", found.payment)
        if found.payment is None:
            return KeyAnswer("moved")
        return KeyAnswer("settled" if found.changed else "recorded", found.payment)
    return KeyAnswer("moved") if found is None else KeyAnswer("recorded", found)


def settle_by_agent(deps: Deps, payment: LocalPayment, *, paid: bool, reference: str | None) -> Settlement:
    """An agent's word on a payment left ``unresolved`` (the customer's wallet SMS, the provider's portal),
    applied exactly as the provider's callback would be (``settle_provider_result``: its id recorded by our
    key, then one conditional UPDATE from pending), so a late callback and the agent cannot both win, and the
    customer gets the same SMS. Paid: under the provider's ``reference``, and posted to billing
    (``post_to_billing``; kept and retried by the worker while billing is down) when it paid a bill; a prepaid
    purchase owes a token instead, which the caller vends (``dialogs.vending.vend_token``); not paid: under an id
    of our own (``none-<key>``), as ``not_received``. The caller checks the reference is no other payment's."""
    key = payment.idempotency_key
    status = "succeeded" if paid else "failed"
    payment_id = reference if paid and reference else f"none-{key}"[:64]
    settled = settle_provider_result(deps, ProviderResult(
        event_id=f"agent:{key}:{status}"[:80], payment_id=payment_id, status=status, amount=payment.amount,
        currency=payment.currency, account_number=payment.account_number, msisdn=payment.msisdn,
        reference=reference if paid else None, failure_reason=None if paid else "not_received", source="agent",
        idempotency_key=key))
    if settled.changed and settled.payment is not None and paid and settled.payment.purpose == "bill":
        post_to_billing(deps, settled.payment, "agent")
    return settled


def _give_up_if_due(deps: Deps, payment: LocalPayment, now: datetime, give_up_seconds: int,
                    counts: dict[str, int]) -> None:
    """A payment the provider may have started, asked about for ``give_up_seconds`` without an answer that
    resolves it: no longer asked; it stays on its way (the wallet may be debited) and an agent is told by the
    audit trail, the console and the ``payments_unresolved_total`` metric."""
    assert deps.ledger is not None
    created = _created_at(payment)
    if payment.status != "created" or created is None or (now - created).total_seconds() < give_up_seconds:
        return
    given_up = deps.ledger.give_up_unrecorded(payment.idempotency_key)
    if given_up is None:
        return
    counts["unresolved"] += 1
    log.error("payment of account %s unresolved after %d questions by its key: left to an agent",
              mask(payment.account_number), payment.status_checks + 1)
    deps.security.record(SecurityEvent(kind="payment_unresolved", channel="worker", subject=payment.msisdn,
                                       account=payment.account_number,
                                       detail="provider never answered by our key; may be debited",
                                       extra={"amount": format(payment.amount, "f"), "purpose": payment.purpose}))
