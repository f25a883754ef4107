"""Security events (PIN, linking, callers, callbacks, gateway) and the port that keeps them.

Anything that decides who may act as whom reports here: the engine (a caller on another
caller's session), the adapters (a gateway token refused, a forged or mismatched payment
callback) and the dialogs (PIN set, changed, failed, locked, unlocked; account linked or
refused). ``subject`` is the raw identifier (an E.164 number, a source address); the
sink stores only a pseudonymous id of it (an HMAC with a server key), never the number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final, Protocol

from .masking import mask

__all__ = ["RENAMED_KINDS", "SECURITY_EVENT_KINDS", "LoggingSecurityAudit", "SecurityAudit", "SecurityEvent",
           "current_kind"]

SECURITY_EVENT_KINDS: Final = frozenset({
    "pin_set", "pin_changed", "pin_failed", "pin_locked", "pin_unlocked", "pin_reset",
    "account_linked", "link_refused", "link_undone",
    "caller_mismatch", "session_reused", "gateway_refused", "guest_refused", "guest_throttled",
    "callback_forged", "callback_mismatch", "callback_stale",
    # A payment the provider started whose id our ledger could not record then (found later by our key).
    "payment_unrecorded",
    # One of those the worker asked about by our key until PAYMENT_UNRECORDED_GIVE_UP_SECONDS, unresolved: an agent's.
    "payment_unresolved",
    # An agent settled one of those by hand (paid, with the provider's reference, or not paid), with a reason.
    "payment_settled_by_agent",
    # Billing took an agent's "paid" or refused it for good; a supervisor marked a refused one handled.
    "payment_posted_to_billing", "payment_billing_refused", "payment_billing_handled",
    # The vending system issued the token a prepaid purchase settled by hand owed, or refused it for good.
    "payment_token_vended", "payment_vend_refused",
    # A payment never sent to the provider that it never answered about by our key all day (the customer was told
    # nothing was charged): flagged for an agent.
    "payment_unanswered",
    # Signing in with a code by SMS, on any channel that offers it (``web``, ``rasa``): the channel says which.
    "code_sent", "sign_in", "sign_in_refused", "sign_in_throttled", "sign_out", "csrf_refused",
    # The budget of sign-in codes for everyone not yet identified was spent (once per spent window).
    "codes_throttled",
})
# Names kinds had before, as rows stored then (migration ``u1_chat`` renames them) or a worker of the
# previous release still writes them: readers show the current name.
RENAMED_KINDS: Final = {
    "web_code_sent": "code_sent", "web_sign_in": "sign_in", "web_sign_in_refused": "sign_in_refused",
    "web_throttled": "sign_in_throttled", "web_sign_out": "sign_out",
}


def current_kind(kind: str) -> str:
    """The name ``kind`` goes by now (``web_sign_in``, written by the chatbot too, is ``sign_in``)."""
    return RENAMED_KINDS.get(kind, kind)

log = logging.getLogger("security")


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One security-relevant fact. ``detail`` is short, fixed text: never a PIN, a code or a number."""

    kind: str
    channel: str
    subject: str | None = None
    account: str | None = None
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class SecurityAudit(Protocol):
    def record(self, event: SecurityEvent) -> None:
        """Keep ``event``. Never raises: a failing audit must not break the customer's hop."""


class LoggingSecurityAudit:
    """The default sink: one masked log line per event (the app wires a durable one)."""

    def record(self, event: SecurityEvent) -> None:
        log.warning("security event %s channel=%s subject=%s account=%s %s", event.kind, event.channel,
                    mask(event.subject), mask(event.account), event.detail)
