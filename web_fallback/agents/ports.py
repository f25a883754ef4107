"""What the agents' pages need from the rest of the product, as ports the app factory fills in.

The console reads a customer's records and acts on them only through these; the concrete SQL
implementations live in ``app/storage/agent_console.py``, so this package imports no storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["AgentAudit", "AgentIdentity", "AuditEntry", "CustomerFile", "CustomerRecords", "PaymentOutcome", "Row"]

ROLES = ("agent", "designer", "supervisor")


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """Who is signed in: the identity provider's subject, a display name, the roles granted."""

    subject: str
    name: str
    roles: tuple[str, ...]
    via: str          # "oidc" or "dev" (the marked local sign-in of `make run`)

    @property
    def role(self) -> str:
        """The strongest role, written in the audit row."""
        for role in ("supervisor", "agent", "designer"):
            if role in self.roles:
                return role
        return "-"

    def may(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One agent action: who, what, which customer (a pseudonym, never the number), how it went."""

    agent: str
    role: str
    action: str
    outcome: str = "ok"
    customer: str | None = None       # the number; the store keeps only its pseudonym
    detail: str = ""
    at: datetime | None = None
    customer_id: str | None = None    # the pseudonym, as read back


class AgentAudit(Protocol):
    """The agents' register and their audit trail. ``record`` never raises (an audit failure is logged)."""

    def seen(self, agent: AgentIdentity) -> None:
        """The agent signed in (created on first sign-in, roles and last sign-in refreshed)."""

    def record(self, entry: AuditEntry) -> None:
        """Keep one action, the customer's number replaced by its pseudonym."""

    def recent(self, *, agent: str | None = None, customer: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """Newest first, filtered by agent subject and/or customer number."""


# A record shown on the console: column name -> text, already masked by the store where it holds
# numbers the page does not choose to show.
Row = dict[str, str]


@dataclass(slots=True)
class CustomerFile:
    """Everything the console shows about one number."""

    msisdn: str
    language: str | None = None
    accounts: list[Row] = field(default_factory=list)          # links and the billing system's view
    consent: list[Row] = field(default_factory=list)
    stopped: bool = False
    sessions: list[Row] = field(default_factory=list)
    security: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    # Payments the worker gave up asking the provider about by our key (``unresolved``), and those never sent it
    # never answered about (``unanswered``): an agent's to ask about, a supervisor's to settle.
    unresolved: list[Row] = field(default_factory=list)
    # Payments settled by hand as paid that billing refused for good: a supervisor's to post again or close.
    billing_refused: list[Row] = field(default_factory=list)
    # Prepaid purchases settled by hand as paid whose token the vending system has not given yet ("token owed"):
    # the worker asks again; a supervisor may ask now.
    tokens_owed: list[Row] = field(default_factory=list)
    mismatches: list[Row] = field(default_factory=list)
    tickets: list[Row] = field(default_factory=list)
    notifications: list[Row] = field(default_factory=list)
    # Incoming messages (SMS, WhatsApp) kept while the engine could not run them, not answered yet.
    kept: list[Row] = field(default_factory=list)
    # Per WhatsApp sender: when the customer last wrote, the 24-hour window, what an alert with a template goes as.
    whatsapp: list[Row] = field(default_factory=list)
    pin: Row = field(default_factory=dict)
    backoffice_error: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What an agent's action on a payment to resolve did, and the payment's status after it.

    ``outcome``: ``not_found`` (no such payment of this customer), ``already`` (no longer unresolved: nothing
    changed), ``reference_taken`` (the reference is another payment's), ``settled``, ``overtaken`` (the
    provider's word came first); asking the provider by our key: ``unreachable``, ``unknown``, ``mismatch``,
    ``recorded`` (it started it: now pending), ``settled``, ``moved``, ``never_started`` (an ``unanswered`` one it
    has no trace of: no longer to resolve); a post billing refused, posted again:
    ``billing_posted``, ``billing_refused``, ``billing_unavailable``, or closed: ``billing_handled``; a prepaid
    purchase settled paid whose token is still owed: ``settled_vend_down``, ``settled_vend_refused``;
    a token owed asked again: ``token_vended``, ``token_unavailable``, ``token_refused``."""

    outcome: str
    status: str | None = None


class CustomerRecords(Protocol):
    """A customer's records, read and acted on by agents."""

    def numbers_for_account(self, account_number: str) -> list[str]:
        """The numbers linked to an account (ours and the billing system's registered one)."""

    def file(self, msisdn: str) -> CustomerFile:
        """Every record of the number, newest first where it matters."""

    def unlock_pin(self, msisdn: str, agent: str) -> bool:
        """Lift the number's PIN lock (as ``python -m app pin-unlock`` does); False when none was locked."""

    def resend(self, msisdn: str, notification_id: int) -> bool:
        """Queue a failed notification of this number again; False when it is not this number's or not failed."""

    def check_payment(self, msisdn: str, key: str) -> PaymentOutcome:
        """Ask the provider now, by our idempotency ``key``, about this number's unresolved payment, and apply
        its answer as the worker would. Never raises for the provider being down (``unreachable``)."""

    def settle_payment(self, msisdn: str, key: str, *, paid: bool, reference: str | None, reason: str,
                       agent: str) -> PaymentOutcome:
        """Settle this number's unresolved payment by hand (paid under the provider's ``reference``, or not),
        through the provider callback's path: the same SMS, one conditional update against a late callback."""

    def repost_to_billing(self, msisdn: str, key: str, agent: str) -> PaymentOutcome:
        """Post again to billing this number's hand "paid" that billing refused for good, once."""

    def close_billing_refusal(self, msisdn: str, key: str, reason: str, agent: str) -> PaymentOutcome:
        """Mark this number's refused billing post handled outside the product, with a reason, once."""

    def vend_token(self, msisdn: str, key: str, agent: str) -> PaymentOutcome:
        """Ask the vending system now for the token this number's prepaid purchase settled by hand still owes
        (the same token however often: the payment's own key), and send the receipt with it."""
