"""Back-end ports: the interfaces dialogs are written against, their data and their errors.

Concrete HTTP clients live in ``backend_clients/`` and satisfy these protocols
structurally; the app factory wires them in. Every method documents the errors it
may raise; dialogs map those errors to outcomes (``backend_down``, ``not_found`` ...)
that the menu YAML routes to polite screens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "FINAL_PAYMENT_STATUSES",
    "PAYMENT_STATUSES",
    "Account",
    "Arrangement",
    "BackendError",
    "BackendUnavailable",
    "Balance",
    "Bill",
    "BillingBackend",
    "Conflict",
    "Consumption",
    "IncidentBackend",
    "MeteringBackend",
    "NotFound",
    "NotSent",
    "Outage",
    "PaymentBackend",
    "PaymentIntent",
    "PaymentRecord",
    "PaymentStatus",
    "PrepaidCredit",
    "PrepaidPurchase",
    "Reading",
    "Rejected",
    "Ticket",
    "TicketEvent",
    "Vend",
]


# ---------------------------------------------------------------- errors
class BackendError(Exception):
    """Base of every error a back-end client raises."""


class BackendUnavailable(BackendError):
    """The back end could not be reached, timed out, answered 5xx, or the circuit is open."""


class NotSent(BackendUnavailable):
    """Unavailable, and the request never reached the back end: the circuit was open, or no try got a
    connection. A payment asked for then was not started (any other ``BackendUnavailable`` may have been)."""


class NotFound(BackendError):
    """The thing asked for does not exist (HTTP 404)."""


class Rejected(BackendError):
    """The back end refused the request as invalid (HTTP 400/422); ``reason`` says why."""

    def __init__(self, reason: str = "", code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code    # the back end's error code ("insufficient_funds" ...), "" when it gave none


class Conflict(BackendError):
    """The request clashes with existing state (HTTP 409), e.g. an idempotency key reused with another body."""


# ---------------------------------------------------------------- billing data
@dataclass(frozen=True, slots=True)
class Account:
    account_number: str
    customer_name: str
    category: Literal["residential", "business", "municipal"]
    kind: Literal["postpaid", "prepaid"]
    zone: str
    meter_id: str
    language: str = "fr"
    phone: str | None = None   # the holder's registered number, if the billing system has one


@dataclass(frozen=True, slots=True)
class Bill:
    bill_id: str
    period: str          # "2026-10"
    issued_on: date
    due_on: date
    amount: Decimal
    paid_amount: Decimal
    kwh: Decimal
    status: Literal["unpaid", "partial", "paid"]


@dataclass(frozen=True, slots=True)
class Balance:
    account_number: str
    amount: Decimal      # outstanding, >= 0
    currency: str        # "XOF"
    unpaid_bills: int
    oldest_due_on: date | None


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    payment_id: str
    reference: str
    amount: Decimal
    currency: str
    paid_at: datetime
    channel: str         # "mobile_money"


@dataclass(frozen=True, slots=True)
class Arrangement:
    arrangement_id: str
    kind: Literal["deferral", "instalments"]
    created_on: date
    status: Literal["active", "completed", "cancelled"]
    months: int
    schedule: tuple[tuple[date, Decimal], ...] = ()


# ---------------------------------------------------------------- metering data
@dataclass(frozen=True, slots=True)
class Reading:
    meter_id: str
    at: datetime
    index_kwh: Decimal   # cumulative register


@dataclass(frozen=True, slots=True)
class Consumption:
    meter_id: str
    days: int
    kwh: Decimal
    previous_kwh: Decimal      # the period of the same length just before
    last_reading: Reading | None


@dataclass(frozen=True, slots=True)
class PrepaidCredit:
    meter_id: str
    credit_kwh: Decimal
    updated_at: datetime
    last_purchase: PrepaidPurchase | None = None


@dataclass(frozen=True, slots=True)
class PrepaidPurchase:
    """The latest credit bought for a prepaid meter, with the token the customer keys in."""

    paid_at: datetime
    amount: Decimal
    kwh: Decimal
    token: str


@dataclass(frozen=True, slots=True)
class Vend:
    """A token the vending system issued for a prepaid meter on a payment received outside the mobile-money flow
    (an agent's "paid"): the 20 digits the customer keys in, and the credit they carry."""

    vend_id: str
    meter_id: str
    payment_id: str
    amount: Decimal
    kwh: Decimal
    token: str


# ---------------------------------------------------------------- payment data
# The provider's payment statuses, defined once: every reader of a payment names them from here.
PaymentStatus = Literal["pending", "succeeded", "failed"]
PAYMENT_STATUSES: tuple[PaymentStatus, ...] = ("pending", "succeeded", "failed")
FINAL_PAYMENT_STATUSES: tuple[PaymentStatus, ...] = ("succeeded", "failed")


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    payment_id: str
    status: PaymentStatus
    amount: Decimal
    currency: str
    purpose: Literal["bill", "prepaid"]
    account_number: str
    reference: str | None = None
    token: str | None = None         # 20-digit STS token for prepaid purchases
    failure_reason: str | None = None
    msisdn: str | None = None        # the number whose wallet pays
    idempotency_key: str | None = None   # ours, echoed back by the provider


# ---------------------------------------------------------------- incident data
@dataclass(frozen=True, slots=True)
class Outage:
    outage_id: str
    zone: str
    started_at: datetime
    estimated_restoration: datetime | None
    cause: str
    status: Literal["ongoing", "resolved"]


@dataclass(frozen=True, slots=True)
class TicketEvent:
    at: datetime
    status: str
    note: str


@dataclass(frozen=True, slots=True)
class Ticket:
    reference: str                 # short, readable aloud: "INC-7K3Q"
    kind: Literal["outage", "complaint"]
    category: str                  # outage | billing | meter | quality | other
    status: Literal["open", "in_progress", "resolved", "closed"]
    account_number: str
    created_at: datetime
    history: tuple[TicketEvent, ...] = field(default=())
    client_reference: str | None = None   # whoever opened it: tells our own ticket from another's
    bill_id: str | None = None            # the disputed bill of a billing complaint


# ---------------------------------------------------------------- ports
@runtime_checkable
class BillingBackend(Protocol):
    """The utility's billing system. Every method may raise ``BackendUnavailable``."""

    def accounts_for_phone(self, msisdn: str) -> list[Account]:
        """Accounts registered to an E.164 number; ``[]`` when the number is unknown."""

    def account(self, account_number: str) -> Account:
        """Raises ``NotFound`` for an unknown account."""

    def balance(self, account_number: str) -> Balance:
        """Raises ``NotFound`` for an unknown account."""

    def balance_and_arrangements(self, account_number: str) -> tuple[Balance, list[Arrangement]]:
        """``balance`` and ``arrangements`` together (one request where the back end can answer both).
        Raises ``NotFound`` for an unknown account."""

    def bills(self, account_number: str, limit: int = 12) -> list[Bill]:
        """Most recent first. Raises ``NotFound`` for an unknown account."""

    def verify_last_bill(self, account_number: str, amount: Decimal) -> bool:
        """True when ``amount`` equals the account's last bill; the linking check. ``NotFound`` if unknown."""

    def payments(self, account_number: str, limit: int = 5) -> list[PaymentRecord]:
        """Payments received, most recent first."""

    def arrangements(self, account_number: str) -> list[Arrangement]:
        """Deferrals and instalment plans, most recent first."""

    def create_arrangement(self, account_number: str, kind: str, months: int, idempotency_key: str) -> Arrangement:
        """Records a deferral or instalment plan. ``Rejected`` when the back end refuses it."""

    def post_payment(self, account_number: str, *, payment_id: str, amount: Decimal, currency: str,
                     reference: str | None, idempotency_key: str, payment_key: str | None = None) -> PaymentRecord:
        """Records money received outside the mobile-money flow (an agent's settlement on the provider's
        proof): it pays the account's bills. The same ``payment_id`` posted again is counted once; ``payment_key``,
        the key the payment was started with at the provider, names the same money when ``payment_id`` is a
        receipt's reference, so the provider's approval of it is never counted again.
        ``NotFound`` for an unknown account; ``Conflict``/``Rejected`` when billing refuses it."""


@runtime_checkable
class MeteringBackend(Protocol):
    """Head-end / meter-data management system. Every method may raise ``BackendUnavailable``."""

    def last_reading(self, meter_id: str) -> Reading | None:
        """``NotFound`` for an unknown meter; ``None`` when it never reported."""

    def consumption(self, meter_id: str, days: int) -> Consumption:
        """kWh over the last ``days`` days and the period before. ``NotFound`` for an unknown meter."""

    def prepaid_credit(self, meter_id: str) -> PrepaidCredit:
        """Remaining credit of a prepaid meter. ``NotFound`` if unknown or not prepaid."""

    def vend(self, meter_id: str, *, payment_id: str, amount: Decimal, currency: str,
             idempotency_key: str, payment_key: str | None = None) -> Vend:
        """A token for ``amount`` on the prepaid meter, paid by ``payment_id``: the same payment (or key) vended
        again gets the same token and credits the meter once, so a retry is always safe. ``payment_key``, the key
        the payment was started with at the provider, names the same money when ``payment_id`` is a receipt's
        reference: a token the provider's approval bought is given again, never a second one. ``NotFound`` for an
        unknown or postpaid meter, ``Rejected``/``Conflict`` when the vending system refuses it for good,
        ``BackendUnavailable`` when unreachable (it may have vended: ask again under the same key)."""


@runtime_checkable
class PaymentBackend(Protocol):
    """Mobile-money provider. Initiation is idempotent by key: retrying never charges twice."""

    def initiate(self, *, account_number: str, msisdn: str, amount: Decimal, purpose: str,
                 idempotency_key: str, callback_url: str, wallet: str | None = None) -> PaymentIntent:
        """Starts a payment the customer approves on the phone, from the ``wallet`` operator's account
        of ``msisdn``; the result comes to ``callback_url``.
        ``Rejected.code`` says why a refused one was refused (``insufficient_funds``, ``wallet_limit_exceeded``,
        ``wallet_not_found`` ...).
        ``Rejected`` for an invalid request, ``Conflict`` for a key reused with another body,
        ``BackendUnavailable`` when unreachable (safe to retry with the same key): ``NotSent`` when the request
        never reached the provider (nothing started), else the provider may have started it unheard."""

    def status(self, payment_id: str) -> PaymentIntent:
        """``NotFound`` for an unknown payment."""

    def by_key(self, idempotency_key: str) -> PaymentIntent | None:
        """The payment started with ``idempotency_key``, or None when the provider never started one (asking
        never starts one). For a payment whose id our ledger could not record. ``BackendUnavailable`` when
        unreachable."""


@runtime_checkable
class IncidentBackend(Protocol):
    """Outage management and customer tickets. Every method may raise ``BackendUnavailable``."""

    def outages_in_zone(self, zone: str) -> list[Outage]:
        """Ongoing outages of a zone."""

    def open_ticket(self, *, kind: str, category: str, account_number: str, msisdn: str,
                    description: str, client_reference: str, bill_id: str | None = None) -> Ticket:
        """Idempotent by ``client_reference``: a retry returns the same ticket. While a ticket for the
        same subject (account, kind, category, bill) is open, that ticket is returned instead of a new
        one: its ``client_reference`` then differs from the one given."""

    def ticket(self, reference: str) -> Ticket:
        """``NotFound`` for an unknown reference."""

    def tickets_for_account(self, account_number: str) -> list[Ticket]:
        """Most recent first."""

