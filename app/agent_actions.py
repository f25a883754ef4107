"""What an agent does to a customer's records, one function per action, shared by the command line
(``python -m app pin-unlock``) and the agents' console, so both take the same path: unlocking a PIN, and
resolving a payment the worker gave up on (asking the provider by our key, or settling it by hand: a prepaid
purchase then gets its token from the vending system), a supervisor's answer to billing refusing a hand "paid"
(post it again, or mark it handled), and a supervisor's "vend again" for a token still owed."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from dialogs.payments import TOKEN_OWED, ask_by_key, post_to_billing, settle_by_agent
from dialogs.registry import Deps
from dialogs.stores import IdentityCache, LocalPayment
from dialogs.vending import vend_token
from engine.masking import mask, mask_typed_numbers
from engine.security_audit import SecurityAudit, SecurityEvent
from web_fallback.agents.ports import PaymentOutcome

from .storage.alerts import SqlOutbox
from .storage.identity_cache import ForgetfulPinVault
from .storage.repositories import SqlPreferences

__all__ = ["check_unresolved_payment", "close_billing_refusal", "repost_to_billing", "settle_unresolved_payment",
           "unlock_pin", "vend_owed_token"]

log = logging.getLogger("agents")


def unlock_pin(sessions: sessionmaker[Session], identity: IdentityCache, security: SecurityAudit,
               msisdn: str, by: str = "an agent") -> bool:
    """Lift the number's PIN lock (the only way out of a fourth lockout in a row): the cached identity is
    dropped, a ``pin_unlocked`` security event kept and an SMS queued. False when no PIN was locked."""
    # Through the vault that drops the number's cached identity, as every PIN change does.
    if not ForgetfulPinVault(sessions, identity).unlock(msisdn):
        return False
    security.record(SecurityEvent("pin_unlocked", "agent", msisdn, None, f"unlocked by {by}"[:200]))
    language = SqlPreferences(sessions).language(msisdn) or "fr"
    SqlOutbox(sessions).add(kind="pin_unlocked", msisdn=msisdn, language=language, payload={},
                            dedupe_key=f"pin_unlocked:{msisdn}:{time.time()}")
    return True


def _customers(deps: Deps, msisdn: str, key: str) -> LocalPayment | PaymentOutcome:
    """The customer's payment under ``key``; another customer's reads as unknown."""
    assert deps.ledger is not None
    payment = deps.ledger.get(key)
    if payment is None or payment.msisdn != msisdn:
        return PaymentOutcome("not_found")
    return payment


def _unresolved_of(deps: Deps, msisdn: str, key: str) -> LocalPayment | PaymentOutcome:
    """The customer's payment under ``key`` while it is to resolve; another customer's reads as unknown."""
    payment = _customers(deps, msisdn, key)
    if isinstance(payment, PaymentOutcome):
        return payment
    if payment.status not in ("unresolved", "unanswered"):
        return PaymentOutcome("already", payment.status)
    return payment


def check_unresolved_payment(deps: Deps, msisdn: str, key: str) -> PaymentOutcome:
    """Ask the provider now, by our key, about the customer's payment to resolve (the worker's question): one
    ``unresolved``, or one never sent that it never answered about (``unanswered``)."""
    found = _unresolved_of(deps, msisdn, key)
    if isinstance(found, PaymentOutcome):
        return found
    answer = ask_by_key(deps, key)
    assert deps.ledger is not None
    if answer.outcome == "unknown" and found.status == "unanswered":
        # Its first answer at last: it never got the request, as the customer was told. Nothing left to resolve.
        deps.ledger.note_answered(key, datetime.now(UTC))
        if deps.ledger.mark_not_started(key) is not None:
            return PaymentOutcome("never_started", "not_started")
    return PaymentOutcome(answer.outcome, answer.payment.status if answer.payment else found.status)


def settle_unresolved_payment(deps: Deps, msisdn: str, key: str, *, paid: bool, reference: str | None,
                              reason: str, by: str) -> PaymentOutcome:
    """Settle the customer's unresolved payment by an agent's word, through the callback's path; the reason
    (numbers masked) and the agent are kept in a ``payment_settled_by_agent`` security event."""
    assert deps.ledger is not None
    found = _unresolved_of(deps, msisdn, key)
    if isinstance(found, PaymentOutcome):
        return found
    if paid and reference:
        other = deps.ledger.by_provider_id(reference)
        if other is not None and other.idempotency_key != key:
            return PaymentOutcome("reference_taken")
    settled = settle_by_agent(deps, found, paid=paid, reference=reference)
    now = deps.ledger.get(key)
    status = now.status if now else None
    if not settled.changed:
        return PaymentOutcome("overtaken", status)
    deps.security.record(SecurityEvent(
        "payment_settled_by_agent", "agent", msisdn, found.account_number,
        f"{'paid' if paid else 'not paid'} by {by}: {mask_typed_numbers(reason)}"[:200],
        extra={"amount": format(found.amount, "f"), "purpose": found.purpose, "status": str(status),
               **({"reference": reference} if paid and reference else {})}))
    log.warning("unresolved payment of account %s settled by %s as %s", mask(found.account_number), by, status)
    if now is not None and now.vend in TOKEN_OWED:
        # A prepaid purchase: the customer's token, asked of the vending system now (the worker asks again).
        vended = vend_token(deps, now, "agent")
        if vended not in ("vended", "already"):
            return PaymentOutcome("settled_vend_down" if vended == "unavailable" else "settled_vend_refused", status)
    return PaymentOutcome("settled", status)


def repost_to_billing(deps: Deps, msisdn: str, key: str, *, by: str) -> PaymentOutcome:
    """Post again to billing an agent's "paid" it refused for good (the account fixed since): ``refused -> due``
    in one conditional update (a double click posts once), then posted now as the worker would. The outcome is
    ``billing_posted``, ``billing_refused`` (refused again: what it said is kept) or ``billing_unavailable``
    (kept due: the worker posts it); ``already`` when it was not refused (nothing changed)."""
    assert deps.ledger is not None
    found = _customers(deps, msisdn, key)
    if isinstance(found, PaymentOutcome):
        return found
    if not deps.ledger.move_billing(key, "refused", "due"):
        return PaymentOutcome("already", found.status)
    outcome = post_to_billing(deps, found, by)
    log.warning("payment of account %s posted to billing again by %s: %s", mask(found.account_number), by, outcome)
    return PaymentOutcome(f"billing_{outcome}", found.status)


def close_billing_refusal(deps: Deps, msisdn: str, key: str, *, reason: str, by: str) -> PaymentOutcome:
    """Mark a refused post handled outside the product (billing credited it by hand, or the money went back),
    with a mandatory reason: ``refused -> handled`` once, audited ``payment_billing_handled``; ``already``
    when it was not refused."""
    assert deps.ledger is not None
    found = _customers(deps, msisdn, key)
    if isinstance(found, PaymentOutcome):
        return found
    said = mask_typed_numbers(reason)
    if not deps.ledger.move_billing(key, "refused", "handled", f"handled by {by}: {said}"):
        return PaymentOutcome("already", found.status)
    deps.security.record(SecurityEvent(
        "payment_billing_handled", "agent", msisdn, found.account_number, f"handled by {by}: {said}"[:200],
        extra={"amount": format(found.amount, "f"), "reference": str(found.provider_payment_id)}))
    log.warning("payment of account %s refused by billing, marked handled by %s", mask(found.account_number), by)
    return PaymentOutcome("billing_handled", found.status)


def vend_owed_token(deps: Deps, msisdn: str, key: str, *, by: str) -> PaymentOutcome:
    """A supervisor's "vend again" for a prepaid purchase settled by hand whose token is still owed: one the
    vending system refused goes back to ``due`` in one conditional update (a double click asks once), then it is
    asked now under the payment's own key, so it never vends twice. ``token_vended`` (the receipt queued with
    it), ``token_unavailable`` (still owed: the worker asks again), ``token_refused`` (what it said is kept);
    ``already`` when no token is owed (nothing asked)."""
    assert deps.ledger is not None
    found = _customers(deps, msisdn, key)
    if isinstance(found, PaymentOutcome):
        return found
    if found.token or found.vend not in TOKEN_OWED:
        return PaymentOutcome("already", found.status)
    if found.vend == "refused" and not deps.ledger.move_vend(key, "refused", "due"):
        return PaymentOutcome("already", found.status)
    owed = deps.ledger.get(key)
    assert owed is not None
    outcome = vend_token(deps, owed, by, tries=owed.vend_tries)
    log.warning("token of account %s asked again by %s: %s", mask(found.account_number), by, outcome)
    return PaymentOutcome("already" if outcome == "already" else f"token_{outcome}", found.status)
