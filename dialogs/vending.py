"""A prepaid purchase settled by hand as paid: the customer's token, asked of the vending system, never twice.

The provider's approval of a prepaid purchase carries the token; a supervisor's "paid" (``settle_by_agent``)
carries none, so the payment is marked owing one (``vend = "due"``) in the same write as the settlement, and
``vend_token`` asks the vending system (``MeteringBackend.vend``, the back office's ``POST /meters/{id}/vends``)
for it under a key derived from the payment (``vend-<our key>``) and the provider's payment id: asked again
after a timeout, by the worker, or by a second supervisor, it answers with the same token and credits the meter
once. The token is kept on the payment by one conditional update (``record_token``: the first one wins) and the
customer's receipt is queued with it through the outbox (``notify_payment``, sealed), exactly as an automatic
success: the customer reads it again under "last payments" and on the balance.

Unreachable, the payment stays owed and the worker asks again with waits doubling (``vend_wait``: 30 s, doubling
up to an hour by default; ``VEND_FIRST_WAIT_SECONDS``, ``VEND_MAX_WAIT_SECONDS``) (``vend_owed_tokens``); refused for good (the meter unknown, the amount refused), it is ``refused``: audited, shown
to a supervisor on the console as "token owed", who asks again once the cause is fixed. Either way the customer is
told once, by SMS, that the money is received and the code follows (``payment_token_owed``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from engine.masking import mask, mask_numbers
from engine.security_audit import SecurityEvent

from .backends import BackendError, BackendUnavailable, Rejected
from .payments import back_office_payment_id, notify_payment
from .registry import Deps, DialogSettings
from .stores import LocalPayment

__all__ = ["vend_owed_tokens", "vend_token", "vend_wait"]

log = logging.getLogger("dialogs.vending")


def vend_wait(settings: DialogSettings, tries: int) -> timedelta:
    """How long after the ``tries``-th unanswered vend the worker asks again: the first wait, doubling, at most the
    longest (30 s and an hour by default)."""
    first, most = settings.vend_first_wait_seconds, settings.vend_max_wait_seconds
    return timedelta(seconds=min(first * 2 ** max(tries - 1, 0), most))


def vend_token(deps: Deps, payment: LocalPayment, by: str, now: datetime | None = None,
               tries: int = 0) -> str:
    """Ask the vending system for the token a prepaid payment owes, keep it, queue the receipt with it. The
    outcome: ``vended``, ``already`` (it has its token, or owes none: nothing asked), ``unavailable`` (still owed,
    asked again after ``vend_wait``) or ``refused`` (for a supervisor, audited)."""
    assert deps.ledger is not None and deps.outbox is not None, "Deps.ledger and Deps.outbox are not wired"
    if payment.token or payment.vend not in ("due", "refused") or deps.metering is None:
        return "already"
    key = payment.idempotency_key
    try:
        meter_id = deps.billing.account(payment.account_number).meter_id
        vended = deps.metering.vend(meter_id, payment_id=back_office_payment_id(payment), amount=payment.amount,
                                    currency=payment.currency, idempotency_key=f"vend-{key}",
                                    payment_key=key)
    except BackendUnavailable as exc:
        later = (now or datetime.now(UTC)) + vend_wait(deps.settings, tries + 1)
        deps.ledger.note_vend(key, "due", None, later)
        _tell_token_owed(deps, payment)
        log.warning("token of account %s not vended yet (%s): asked again after %s", mask(payment.account_number),
                    type(exc).__name__, later.isoformat(timespec="seconds"))
        return "unavailable"
    except BackendError as exc:
        said = _refusal(exc)
        deps.ledger.note_vend(key, "refused", said, None)
        deps.security.record(SecurityEvent(
            kind="payment_vend_refused", channel=by, subject=payment.msisdn, account=payment.account_number,
            detail=f"vending system refused the token: {said}"[:200],
            extra={"amount": format(payment.amount, "f"), "payment_id": back_office_payment_id(payment)}))
        _tell_token_owed(deps, payment)
        log.error("token of account %s refused by the vending system: left to a supervisor",
                  mask(payment.account_number))
        return "refused"
    kept = deps.ledger.record_token(key, vended.token)
    if kept is None:
        return "already"     # another vend of this payment (the same token) kept it first, and queued the receipt
    deps.security.record(SecurityEvent(
        kind="payment_token_vended", channel=by, subject=payment.msisdn, account=payment.account_number,
        detail="token vended for a prepaid purchase settled by hand",
        extra={"amount": format(payment.amount, "f"), "payment_id": back_office_payment_id(payment),
               "vend_id": vended.vend_id}))
    # The receipt an automatic success sends, with the token (sealed in the outbox), once per payment.
    notify_payment(deps, kept, "succeeded")
    return "vended"


def _tell_token_owed(deps: Deps, payment: LocalPayment) -> None:
    """The customer's money is received but the code is not there yet: say so once (the outbox's dedupe key,
    ``notify_payment``), so that no one pays again or calls in doubt; the receipt with the code follows it."""
    notify_payment(deps, payment, "token_owed")


def _refusal(exc: BackendError) -> str:
    """What the vending system said refusing a vend, for the supervisor: its code and message, numbers masked."""
    code = exc.code if isinstance(exc, Rejected) and exc.code else type(exc).__name__
    return mask_numbers(f"{code}: {exc}" if str(exc) else code)[:200]


def vend_owed_tokens(deps: Deps, now: datetime) -> int:
    """The worker's pass: ask again for each token owed whose wait is over; how many were vended."""
    assert deps.ledger is not None
    return sum(vend_token(deps, payment, "worker", now, payment.vend_tries) == "vended"
               for payment in deps.ledger.to_vend(now))
