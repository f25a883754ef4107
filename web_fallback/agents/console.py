"""``/console/``: an agent looks a customer up by phone or account number and acts on the records.

Every look-up is throttled per agent and audited (the customer as a pseudonym). The browser's cookie
only ever holds what the agent typed: a number found through an account is re-resolved on the
server from the account and its position, so an agent who was given an account number sees the
linked numbers masked and never receives them. Supervisors see numbers in clear.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import phonenumbers
from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from engine.masking import mask, mask_numbers, mask_typed_numbers

from .auth import csrf_token, current_agent, requires
from .ports import AgentAudit, AgentIdentity, AuditEntry, CustomerFile, CustomerRecords, PaymentOutcome

__all__ = ["ConsoleConfig", "console_blueprint", "normalise_phone"]

_OPEN = "agent_open"
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,31}$")
_MAX_QUERY = 40
_PAYMENT_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
# The provider's payment reference as its portal and the customer's wallet SMS give it (PAY-..., a transaction id).
_PROVIDER_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
MAX_REASON = 200
# What the agent reads after acting on a payment to resolve, by outcome (``PaymentOutcome``).
_PAYMENT_NOTICES = {
    "already": "This payment is no longer to resolve (now {status}): nothing changed.",
    "reference_taken": "This reference is another payment's: nothing changed. Check it with the provider.",
    "overtaken": "The provider's word came first (now {status}): yours was not applied.",
    "unreachable": "The provider could not be reached: nothing changed. Try again later.",
    "unknown": "The provider has no payment under our key: it most likely never started. If the customer "
               "shows no debit, settle it as not paid.",
    "mismatch": "The provider's answer disagrees with what the customer confirmed: kept for review, nothing "
                "changed.",
    "recorded": "The provider has it, not finished yet: it is now {status}, and settles when the provider says so.",
    "moved": "The payment changed meanwhile (now {status}): nothing applied.",
    "never_started": "The provider has no payment under our key: nothing was taken, as the customer was told. "
                     "No longer to resolve.",
    "billing_posted": "Billing recorded it: the customer's balance no longer shows it due.",
    "billing_refused": "Billing refused it again: what it said is on the row. Fix the account, or mark it handled.",
    "billing_unavailable": "Billing could not be reached: it stays owed to billing and the worker posts it.",
    "billing_handled": "Marked handled; billing is no longer asked to take it.",
    "settled_vend_down": "Settled as {status}; the token is owed: the vending system could not be reached. "
                                 "The worker asks it again and the customer gets the token by SMS.",
    "settled_vend_refused": "Settled as {status}; the token is owed: the vending system refused it (what it said "
                             "is on the row). Fix the cause, then vend again.",
    "token_vended": "Token vended: the customer gets it by SMS and reads it again in the last payments.",
    "token_unavailable": "The vending system could not be reached: the token stays owed and the worker asks again.",
    "token_refused": "The vending system refused it again: what it said is on the row.",
}
# Tokens a supervisor asks for again: no longer owed (vended meanwhile), or someone else's.
_TOKEN_NOTICES = {"already": "This payment owes no token any more (vended meanwhile): nothing asked."}
# Payments a supervisor answers for billing (posted again, or closed): not any more in the list, or someone's else.
_BILLING_NOTICES = {"already": "Billing's refusal of this payment was already dealt with: nothing changed."}


@dataclass(frozen=True)
class ConsoleConfig:
    default_region: str = "SN"
    lookup_limit: int = 20            # look-ups (and file views) per agent ...
    lookup_window_seconds: int = 600  # ... per this many seconds
    payment_action_limit: int = 10    # actions on payments to resolve per agent in the same window


def normalise_phone(text: str, region: str) -> str | None:
    """An E.164 number from what an agent typed (``77 000 00 01``, ``+221770000001``), or None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def console_blueprint(records: CustomerRecords, audit: AgentAudit, hit: Callable[[str, int, int], bool],
                      config: ConsoleConfig) -> Blueprint:
    """``hit(key, limit, window)`` is the shared throttle (True while under the limit)."""
    bp = Blueprint("agents_console", __name__)

    def agent() -> AgentIdentity:
        found = current_agent()
        assert found is not None   # guarded by ``requires``
        return found

    def throttled(who: AgentIdentity) -> bool:
        if hit(f"agent-lookup:{who.subject}", config.lookup_limit, config.lookup_window_seconds):
            return False
        audit.record(AuditEntry(who.subject, who.role, "lookup", outcome="throttled"))
        return True

    def too_many() -> ResponseReturnValue:
        abort(429, f"You have looked up {config.lookup_limit} customers in the last "
                   f"{config.lookup_window_seconds // 60} minutes; please wait before the next one.")

    def resolve(opened: Any) -> tuple[str | None, list[str]]:
        """The number of the open file (or None) and, for an account look-up, every linked number."""
        if not isinstance(opened, dict):
            return None, []
        kind, value, index = opened.get("kind"), str(opened.get("value", "")), opened.get("index")
        if kind == "phone":
            return normalise_phone(value, config.default_region), []
        if kind == "account" and _ACCOUNT.match(value):
            numbers = records.numbers_for_account(value)
            if isinstance(index, int) and 0 <= index < len(numbers):
                return numbers[index], numbers
            return (numbers[0] if len(numbers) == 1 else None), numbers
        return None, []

    def shown(who: AgentIdentity, opened: dict[str, Any]) -> Callable[[str], str]:
        """How a number appears to this agent: in clear for a supervisor or the number the agent typed."""
        if who.may("supervisor"):
            return lambda value: value
        typed = normalise_phone(str(opened.get("value", "")), config.default_region) \
            if opened.get("kind") == "phone" else None
        return lambda value: value if value == typed else mask(value)

    def page(who: AgentIdentity, **values: Any) -> str:
        return render_template("agents/console.html", agent=who, csrf=csrf_token(), **values)

    @bp.get("/console/")
    @requires("agent", "supervisor")
    def home() -> str:
        who = agent()
        return page(who, mine=audit.recent(agent=who.subject, limit=15), limit=config.lookup_limit)

    @bp.get("/console/audit")
    @requires("supervisor")
    def audit_trail() -> str:
        """What every agent did lately (customers as pseudonyms): a supervisor's view."""
        who = agent()
        wanted = " ".join(request.args.get("agent", "").split())[:200] or None
        audit.record(AuditEntry(who.subject, who.role, "view_audit", detail=f"agent {wanted or '(all)'}"))
        return render_template("agents/audit.html", agent=who, csrf=csrf_token(), wanted=wanted,
                               rows=audit.recent(agent=wanted, limit=200))

    @bp.post("/console/lookup")
    @requires("agent", "supervisor")
    def lookup() -> ResponseReturnValue:
        who = agent()
        kind = request.form.get("kind", "phone")
        query = " ".join(request.form.get("q", "").split())
        if kind not in ("phone", "account") or not query or len(query) > _MAX_QUERY:
            abort(400, "Type a phone number (e.g. +221770000001) or an account number (e.g. 1000001).")
        if kind == "phone":
            # Counted (and audited) when the file is shown, just after this redirect.
            msisdn = normalise_phone(query, config.default_region)
            if msisdn is None:
                audit.record(AuditEntry(who.subject, who.role, "lookup", outcome="invalid", detail="phone"))
                abort(400, "This is not a phone number. Type it as the customer gives it, e.g. 77 000 00 01 or +221770000001.")
            session[_OPEN] = {"kind": "phone", "value": msisdn}
            return redirect(url_for("agents_console.customer"))
        if not _ACCOUNT.match(query):
            audit.record(AuditEntry(who.subject, who.role, "lookup", outcome="invalid", detail="account"))
            abort(400, "An account number is 3 to 32 letters, digits or dashes, e.g. 1000001.")
        if throttled(who):
            too_many()
        numbers = records.numbers_for_account(query)
        audit.record(AuditEntry(who.subject, who.role, "lookup_account", outcome="ok" if numbers else "not_found",
                                detail=f"account {query}: {len(numbers)} number(s)"))
        session[_OPEN] = {"kind": "account", "value": query}
        if len(numbers) == 1:
            session[_OPEN] = {"kind": "account", "value": query, "index": 0}
            return redirect(url_for("agents_console.customer"))
        view = shown(who, session[_OPEN])
        return page(who, account=query, candidates=[view(n) for n in numbers], mine=[], limit=config.lookup_limit)

    @bp.post("/console/open")
    @requires("agent", "supervisor")
    def open_number() -> ResponseReturnValue:
        opened = session.get(_OPEN)
        index = request.form.get("index", "")
        if not isinstance(opened, dict) or opened.get("kind") != "account" or not index.isdigit():
            abort(400, "Look the account up again, then pick one of its numbers.")
        session[_OPEN] = {"kind": "account", "value": opened.get("value", ""), "index": int(index)}
        return redirect(url_for("agents_console.customer"))

    @bp.get("/console/customer")
    @requires("agent", "supervisor")
    def customer() -> str:
        who = agent()
        opened = session.get(_OPEN)
        msisdn, _ = resolve(opened)
        if msisdn is None or not isinstance(opened, dict):
            abort(404, "No customer is open: look one up first.")
        if throttled(who):
            too_many()
        found = records.file(msisdn)
        audit.record(AuditEntry(who.subject, who.role, "view_customer", customer=msisdn,
                                detail=f"found by {opened.get('kind')}"))
        view = shown(who, opened)
        if not who.may("supervisor"):
            _mask_free_text(found)
        notice = session.pop("agent_notice", None)
        return page(who, file=found, number=view(msisdn), history=audit.recent(customer=msisdn, limit=20),
                    notice=notice, limit=config.lookup_limit)

    def acting() -> tuple[AgentIdentity, str]:
        who = agent()
        msisdn, _ = resolve(session.get(_OPEN))
        if msisdn is None:
            abort(404, "No customer is open: look one up first.")
        return who, msisdn

    @bp.post("/console/pin-unlock")
    @requires("agent", "supervisor")
    def pin_unlock() -> ResponseReturnValue:
        who, msisdn = acting()
        done = records.unlock_pin(msisdn, who.subject)
        audit.record(AuditEntry(who.subject, who.role, "pin_unlock", outcome="ok" if done else "not_locked",
                                customer=msisdn))
        session["agent_notice"] = ("PIN unlocked; the customer is told by SMS." if done
                                   else "This customer's PIN was not locked: nothing changed.")
        return redirect(url_for("agents_console.customer"))

    @bp.post("/console/resend")
    @requires("agent", "supervisor")
    def resend() -> ResponseReturnValue:
        who, msisdn = acting()
        raw = request.form.get("notification", "")
        if not raw.isdigit() or len(raw) > 12:
            abort(400, "Pick a notification from the list.")
        done = records.resend(msisdn, int(raw))
        audit.record(AuditEntry(who.subject, who.role, "resend_notification", outcome="ok" if done else "refused",
                                customer=msisdn, detail=f"notification {raw}"))
        session["agent_notice"] = ("Notification queued again." if done
                                   else "Only a failed notification of this customer can be sent again.")
        return redirect(url_for("agents_console.customer"))

    def payment_key() -> str:
        key = request.form.get("key", "")
        if not _PAYMENT_KEY.match(key):
            abort(400, "Pick a payment from the list of payments to resolve.")
        return key

    def payment_throttled(who: AgentIdentity, msisdn: str, action: str) -> None:
        if not hit(f"agent-payment:{who.subject}", config.payment_action_limit, config.lookup_window_seconds):
            audit.record(AuditEntry(who.subject, who.role, action, outcome="throttled", customer=msisdn))
            abort(429, f"You have acted on {config.payment_action_limit} payments in the last "
                       f"{config.lookup_window_seconds // 60} minutes; please wait before the next one.")

    def supervisor_acting(action: str) -> tuple[AgentIdentity, str, str]:
        """Who acts, on which customer and payment key, when money is decided by a person: a supervisor's act. An
        agent's form (the page shows none) is refused, audited."""
        who, msisdn = acting()
        key = payment_key()
        if who.may("supervisor"):
            return who, msisdn, key
        audit.record(AuditEntry(who.subject, who.role, action, outcome="refused", customer=msisdn,
                                detail=f"key {key[:16]}: not a supervisor"))
        abort(403, "Settling a payment by hand, or answering billing for it, is a supervisor's act: ask a "
                   "supervisor, or ask the provider by our key (Vérifier auprès de l'opérateur).")

    def reason_given() -> str:
        reason = " ".join(request.form.get("reason", "").split())
        if not reason:
            abort(400, "Give the reason (what proves it: the customer's wallet SMS, the provider's portal ...).")
        if len(reason) > MAX_REASON:
            abort(400, f"The reason is at most {MAX_REASON} characters; keep it short.")
        return reason

    def payment_done(who: AgentIdentity, msisdn: str, action: str, done: PaymentOutcome, detail: str,
                     settled: str, notices: dict[str, str] | None = None) -> ResponseReturnValue:
        audit.record(AuditEntry(who.subject, who.role, action, outcome=done.outcome, customer=msisdn,
                                detail=f"{detail} -> {done.status or '-'}"))
        if done.outcome == "not_found":
            abort(404, "This customer has no payment under this key. Reload the customer's page and pick one "
                       "of the payments to resolve.")
        notice = settled if done.outcome == "settled" else \
            {**_PAYMENT_NOTICES, **(notices or {})}.get(done.outcome, "Nothing changed.")
        session["agent_notice"] = notice.format(status=done.status or "unknown")
        return redirect(url_for("agents_console.customer"))

    @bp.post("/console/payment-check")
    @requires("agent", "supervisor")
    def payment_check() -> ResponseReturnValue:
        """Ask the provider now by our key, as the worker does; its answer settles the payment if final."""
        who, msisdn = acting()
        key = payment_key()
        payment_throttled(who, msisdn, "payment_check")
        done = records.check_payment(msisdn, key)
        return payment_done(who, msisdn, "payment_check", done, f"key {key[:16]}",
                            "The provider settled it: now {status}; the customer is told by SMS.")

    @bp.post("/console/payment-settle")
    @requires("agent", "supervisor")
    def payment_settle() -> ResponseReturnValue:
        """Settle by hand, on proof (the wallet SMS, the provider's portal), with a mandatory reason: money decided
        by a person is a supervisor's act. An agent's form (the page shows none) is refused and audited."""
        who, msisdn, key = supervisor_acting("payment_settle")
        decision = request.form.get("decision", "")
        reference = request.form.get("reference", "").strip()
        if decision not in ("paid", "not_paid"):
            abort(400, "Choose whether the payment was paid or not.")
        reason = reason_given()
        if decision == "paid" and not _PROVIDER_REFERENCE.match(reference):
            abort(400, "A paid payment needs the provider's reference (3 to 64 letters, digits, dots, dashes), "
                       "as its portal or the customer's wallet SMS shows it.")
        payment_throttled(who, msisdn, "payment_settle")
        paid = decision == "paid"
        done = records.settle_payment(msisdn, key, paid=paid, reference=reference if paid else None,
                                      reason=reason, agent=who.subject)
        detail = f"key {key[:16]} {decision}{f' ref {reference}' if paid else ''}: {mask_typed_numbers(reason)}"
        return payment_done(who, msisdn, "payment_settle", done, detail,
                            "Settled as {status}; the customer is told by SMS.")

    @bp.post("/console/billing-repost")
    @requires("agent", "supervisor")
    def billing_repost() -> ResponseReturnValue:
        """Post again to billing a hand "paid" it refused for good, once the account is fixed."""
        who, msisdn, key = supervisor_acting("billing_repost")
        payment_throttled(who, msisdn, "billing_repost")
        done = records.repost_to_billing(msisdn, key, who.subject)
        return payment_done(who, msisdn, "billing_repost", done, f"key {key[:16]}", "", _BILLING_NOTICES)

    @bp.post("/console/billing-handled")
    @requires("agent", "supervisor")
    def billing_handled() -> ResponseReturnValue:
        """Close a refused billing post handled outside the product (credited by hand, money sent back)."""
        who, msisdn, key = supervisor_acting("billing_handled")
        reason = reason_given()
        payment_throttled(who, msisdn, "billing_handled")
        done = records.close_billing_refusal(msisdn, key, reason, who.subject)
        return payment_done(who, msisdn, "billing_handled", done, f"key {key[:16]}: {mask_typed_numbers(reason)}",
                            "", _BILLING_NOTICES)

    @bp.post("/console/token-vend")
    @requires("agent", "supervisor")
    def token_vend() -> ResponseReturnValue:
        """Ask the vending system now for a token still owed on a prepaid purchase settled by hand (the same token
        however often it is asked): a supervisor's act, as settling it was."""
        who, msisdn, key = supervisor_acting("token_vend")
        payment_throttled(who, msisdn, "token_vend")
        done = records.vend_token(msisdn, key, who.subject)
        return payment_done(who, msisdn, "token_vend", done, f"key {key[:16]}", "", _TOKEN_NOTICES)

    return bp


def _mask_free_text(found: CustomerFile) -> None:
    """Phone and account numbers stay masked in free text: a callback's fields as a program's text (every long
    number), a security detail as words (an agent's reason in it keeps its amounts and short numbers readable)."""
    for rows in (found.mismatches, found.security):
        for row in rows:
            if "fields" in row:
                row["fields"] = mask_numbers(row["fields"])
            if "detail" in row:
                row["detail"] = mask_typed_numbers(row["detail"])
