"""Ports to the product's own records that dialogs use (implemented on SQL in ``app/storage``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from engine.audit_once import WindowCounter

__all__ = [
    "AWAITED_STATUSES",
    "NOTIFY_CHANNELS",
    "UNRECORDED_STATUSES",
    "AccountLink",
    "AccountLinks",
    "Consent",
    "ConsentChange",
    "ContactInfo",
    "Contacts",
    "EmailCheck",
    "IdentityCache",
    "LocalPayment",
    "Outbox",
    "PaymentLedger",
    "PendingTicket",
    "PendingTickets",
    "PinVault",
    "PinVerdict",
    "Preferences",
    "ProviderResult",
    "Subscription",
    "Subscriptions",
]


@dataclass(frozen=True, slots=True)
class AccountLink:
    msisdn: str
    account_number: str
    source: str   # "billing" (registered there) or "self-service" (linked by the customer)


@runtime_checkable
class AccountLinks(Protocol):
    """Which accounts a phone number may act on."""

    def accounts_for(self, msisdn: str) -> list[AccountLink]:
        """The links of a number, oldest first."""

    def link(self, msisdn: str, account_number: str, source: str, undo_hash: str | None = None) -> AccountLink:
        """Create the link if absent; linking twice is harmless. ``undo_hash``: the hashed code that
        lets the account's registered number undo this link."""

    def linked_to(self, account_number: str) -> list[AccountLink]:
        """The numbers linked to an account by self-service (not its registered holder), oldest first."""

    def unlink(self, msisdn: str, account_number: str) -> bool:
        """Remove a self-service link; False when there was none."""

    def undo(self, account_number: str, code: str) -> str | None:
        """Remove the self-service link of ``account_number`` made with undo ``code``; the number it
        linked, or None when no link matches."""


@runtime_checkable
class IdentityCache(Protocol):
    """Who a number is (its accounts with the fields the main menu needs, its language), kept for a
    while so a known customer's dial needs neither the back office nor the database.

    ``get`` and ``put`` never raise: a cache that cannot be reached is a miss. ``forget`` raises when
    it cannot reach the cache, so that a change (a link undone) never goes unnoticed silently."""

    def get(self, msisdn: str) -> dict[str, Any] | None:
        """The identity kept for ``msisdn``, or None (never kept, expired, forgotten)."""

    def put(self, msisdn: str, identity: dict[str, Any]) -> None:
        """Keep ``identity`` (JSON-serialisable) for the cache's time to live."""

    def forget(self, msisdn: str) -> None:
        """Drop what is kept for ``msisdn``: a link, the language or the PIN changed."""


@runtime_checkable
class Preferences(Protocol):
    """What a customer chose and the product remembers across sessions."""

    def language(self, msisdn: str) -> str | None:
        """The language the customer chose, if any."""

    def set_language(self, msisdn: str, language: str) -> None:
        """Remember the customer's language."""


# ---------------------------------------------------------------- where messages go
NOTIFY_CHANNELS = ("sms", "whatsapp", "email")
# Money on its way to the account that the back end's balance does not show yet: a payment the provider
# accepted and has not settled (pending), or never settled (unconfirmed: it may have debited the wallet), and
# one it may have started without our ledger knowing its id (created: our write of the id failed, or we never
# heard its answer; unresolved: the worker stopped asking, an agent decides). Not ``not_started``: the
# provider never got it (unreachable when asked, as the customer was told) or answered it has no such payment.
AWAITED_STATUSES = ("created", "pending", "unconfirmed", "unresolved")
# A payment without the provider's id: the provider may be asked about it by our key (the worker does).
UNRECORDED_STATUSES = ("created", "not_started", "unresolved", "unanswered")
EmailCheck = Literal["ok", "wrong", "expired", "locked", "none"]


@dataclass(frozen=True, slots=True)
class ContactInfo:
    channel: str                  # sms | whatsapp | email (SMS when never chosen)
    email: str | None = None      # confirmed address only
    email_pending: str | None = None   # typed, code sent, not confirmed yet
    chosen: bool = False          # the customer chose ``channel`` (not SMS by default)
    email_code_expires_at: datetime | None = None   # when the code sent to ``email_pending`` stops working
    email_code_tries_left: int = 0    # wrong tries the code sent to ``email_pending`` still allows


@runtime_checkable
class Contacts(Protocol):
    """Where a customer's notifications go: the channel they chose and their e-mail address.

    An address counts only once the customer typed back the code sent to it, so no one registers
    someone else's address. Every change is kept in the consent history (time, channel, source)."""

    def contact(self, msisdn: str) -> ContactInfo:
        """What the customer chose (SMS and no address when nothing)."""

    def set_channel(self, msisdn: str, channel: str, *, via: str, source: str) -> None:
        """Choose ``channel`` (one of ``NOTIFY_CHANNELS``); ``via``: where the customer said it."""

    def stage_email(self, msisdn: str, address: str, code_hash: str, expires_at: datetime) -> None:
        """Keep ``address`` pending with the salted hash of the code sent to it (a new one replaces it)."""

    def confirm_email(self, msisdn: str, code: str, now: datetime, *, via: str, source: str) -> EmailCheck:
        """The code typed back: ``ok`` makes the pending address the customer's; ``wrong`` (tries left),
        ``locked`` (too many wrong tries: a new code is needed), ``expired``, ``none`` (nothing pending)."""


# ---------------------------------------------------------------- security
PinCheck = Literal["ok", "wrong", "locked", "not_set"]


@dataclass(frozen=True, slots=True)
class PinVerdict:
    result: PinCheck
    attempts_left: int = 0
    locked_until: datetime | None = None
    lockouts: int = 0             # lockouts in a row, this one included: sets how long it lasts
    newly_locked: bool = False    # this very attempt locked the PIN (tell the customer once)


@runtime_checkable
class PinVault(Protocol):
    """Customer PINs, stored hashed (scrypt, per-user salt); never logged.

    Three wrong tries lock the PIN; lockouts in a row grow (15 minutes, 1 hour, 24 hours, then
    until an agent unlocks it). A wrong try is counted atomically before the PIN is checked, so
    concurrent guesses cannot outrun the lock."""

    def is_set(self, msisdn: str) -> bool:
        """Whether the customer has chosen a PIN."""

    def lock_state(self, msisdn: str, now: datetime) -> PinVerdict | None:
        """The ``locked`` verdict while a lock lasts, else None (nothing counted)."""

    def verify(self, msisdn: str, pin: str, now: datetime) -> PinVerdict:
        """Check a PIN, counting wrong tries; ``locked`` while the lock lasts (even for the right PIN)."""

    def unlock(self, msisdn: str) -> bool:
        """An agent lifts the lock and forgets past lockouts; False when there was no lock."""

    def set_pin(self, msisdn: str, pin: str) -> None:
        """Choose or change the PIN (resets the wrong-try counter)."""

    def stage_pin(self, msisdn: str, pin: str) -> None:
        """Keep a newly chosen PIN (hashed) until the customer types it again."""

    def confirm_pin(self, msisdn: str, pin: str) -> bool:
        """Make the staged PIN the PIN when ``pin`` matches it; False (and nothing staged) otherwise."""

    def is_current(self, msisdn: str, pin: str) -> bool:
        """Whether ``pin`` is the PIN set, counting no try: only for a PIN the caller is known to have chosen
        (a confirmation made before, its hop run again), never as a check of who the caller is."""


# ---------------------------------------------------------------- alerts
@dataclass(frozen=True, slots=True)
class Subscription:
    msisdn: str
    topic: str        # outage_zone | power_back | bill_issued | low_credit | payment_received
    scope: str        # zone, account number or ""
    channel: str
    active: bool
    language: str | None = None   # the conversation's when they subscribed


@runtime_checkable
class Subscriptions(Protocol):
    def subscribe(self, msisdn: str, topic: str, scope: str = "", channel: str = "sms",
                  language: str | None = None) -> Subscription:
        """Create or re-activate; idempotent. ``language``: the conversation's, for the alert's text."""

    def unsubscribe(self, msisdn: str, topic: str, scope: str = "") -> None:
        """Deactivate; harmless when absent."""

    def for_user(self, msisdn: str) -> list[Subscription]:
        """Active subscriptions of a number."""

    def subscribers(self, topic: str, scope: str) -> list[Subscription]:
        """Active subscriptions to ``topic`` for ``scope``, oldest first: who wants that alert."""


@dataclass(frozen=True, slots=True)
class ConsentChange:
    msisdn: str
    action: str       # opt_in | opt_out | stop | start | channel (topic: the channel) | email (topic: confirmed)
    topic: str        # "" for stop/start: every topic
    scope: str
    channel: str      # where the customer said it: ussd, sms, whatsapp, web, agent ... ("" when not known)
    source: str       # what carried it: "menu", "keyword STOP", "agent 42" ...
    at: datetime
    delivery: str = ""   # an opt-in: where its alerts go (sms, whatsapp, email); "" for the other actions


@runtime_checkable
class Consent(Protocol):
    """The customer's consent to messages (GDPR), every change kept with time, channel and source.

    Topics are opt-in (``outage_zone``, ``power_back``, ``bill_issued``, ``low_credit``,
    ``ticket_status`` ...). ``stop_all`` (the STOP keyword) ends every topic at once and stops every
    non-transactional message, queued ones included; receipts and tokens still go. An explicit
    opt-in, or ``start``, lifts it. No method raises for an unknown number."""

    def opt_in(self, msisdn: str, topic: str, scope: str = "", *, channel: str, source: str,
               language: str | None = None, delivery: str = "sms") -> None:
        """Subscribe (idempotent; the history records each request): ``channel`` is where the customer
        said it, ``delivery`` where the alerts go, ``language`` the alert's text's."""

    def opt_out(self, msisdn: str, topic: str, scope: str = "", *, channel: str, source: str) -> None:
        """Unsubscribe; harmless when absent."""

    def stop_all(self, msisdn: str, *, channel: str, source: str) -> int:
        """STOP: unsubscribe from everything; returns how many subscriptions ended."""

    def start(self, msisdn: str, *, channel: str, source: str) -> None:
        """START: non-transactional messages may go again (topics stay as they are)."""

    def is_stopped(self, msisdn: str) -> bool:
        """Whether the customer sent STOP and not START since."""

    def history(self, msisdn: str) -> list[ConsentChange]:
        """Every change, oldest first."""


# ---------------------------------------------------------------- outbox
@runtime_checkable
class Outbox(Protocol):
    """Durable queue of messages to customers; the notification workers send from it."""

    def add(self, *, kind: str, msisdn: str, language: str, payload: dict[str, Any], dedupe_key: str,
            channel: str | None = None, note: str | None = None) -> bool:
        """Record an event once per ``dedupe_key``; False when it was already there. ``channel`` forces
        one (an e-mail code); by default the customer's chosen channel. ``note``: why it is queued so, for
        agents (kept as the row's last word until it is sent)."""

    def queued(self, dedupe_key: str) -> bool:
        """Whether a message was queued under ``dedupe_key`` (sent since or not); nothing is queued."""


# ---------------------------------------------------------------- payments
@dataclass(frozen=True, slots=True)
class LocalPayment:
    idempotency_key: str
    msisdn: str
    account_number: str
    purpose: str
    amount: Decimal
    # created | pending | succeeded | failed | unconfirmed | not_started | unresolved | unanswered
    status: str
    provider_payment_id: str | None = None
    reference: str | None = None
    token: str | None = None
    failure_reason: str | None = None
    created_at: datetime | None = None
    language: str = "fr"        # the conversation's language when confirmed: the receipt's
    currency: str = "XOF"
    wallet: str | None = None   # the mobile-money operator chosen (configuration code)
    status_checks: int = 0      # times the worker asked the provider for the status
    # A prepaid purchase settled by hand owes a token: "due" (the worker asks the vending system), "refused"
    # (for a supervisor), "vended"; None for any other payment (``dialogs/vending.py``).
    vend: str | None = None
    vend_tries: int = 0         # vends that did not give the token (the worker's waits double with them)


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """What the provider says became of a payment, by callback or when asked for its status."""

    event_id: str
    payment_id: str
    status: str                 # succeeded | failed
    amount: Decimal | None
    currency: str | None
    account_number: str | None
    msisdn: str | None
    reference: str | None = None
    token: str | None = None
    failure_reason: str | None = None
    source: str = "callback"    # callback | status
    idempotency_key: str | None = None   # ours, as the provider echoes it: finds a payment whose id we never recorded


@runtime_checkable
class PaymentLedger(Protocol):
    """The product's own record of every payment a customer confirmed (written before the provider is
    called, so a payment is never lost between the two)."""

    def create(self, *, idempotency_key: str, msisdn: str, account_number: str, purpose: str,
               amount: Decimal, language: str = "fr", wallet: str | None = None) -> LocalPayment:
        """Idempotent by key; a ``not_started`` payment created again is ``created`` again (about to be sent
        to the provider once more, under the same key)."""

    def mark_pending(self, idempotency_key: str, provider_payment_id: str) -> LocalPayment:
        """The provider accepted the request (from any of ``UNRECORDED_STATUSES`` to ``pending``)."""

    def mark_not_started(self, idempotency_key: str) -> LocalPayment | None:
        """``created -> not_started``: the provider never got the request, or says it has no payment under our
        key; no longer counted as on its way. ``unanswered -> not_started`` too, once the provider says so. None
        when the payment is neither (nothing changed)."""

    def record_provider_id(self, idempotency_key: str, provider_payment_id: str) -> LocalPayment | None:
        """The provider's id of a payment it started whose id we did not record then (no id yet, one of
        ``UNRECORDED_STATUSES``): now ``pending``, its status questions counted afresh. None (nothing changed)
        for any other payment."""

    def unrecorded(self, now: datetime, after_seconds: int, max_interval_seconds: int, give_up_seconds: int,
                   limit: int = 50) -> list[LocalPayment]:
        """Payments without the provider's id (``created`` or ``not_started``) due for a question by our key:
        first ``after_seconds`` after they were created, then after twice the last wait each time, at most
        ``max_interval_seconds``. ``not_started`` ones only until ``give_up_seconds`` after they were created;
        ``created`` ones until the worker gives them up (``give_up_unrecorded``)."""

    def note_answered(self, idempotency_key: str, now: datetime) -> None:
        """The provider answered a question by our key about this payment (even "no such payment")."""

    def flag_unanswered(self, now: datetime, give_up_seconds: int, limit: int = 50) -> list[LocalPayment]:
        """``not_started -> unanswered``, once, for each payment never sent that the provider never answered
        about by our key (``note_answered``) in the ``give_up_seconds`` after it was created: the customer was told
        nothing was charged, and no one knows. Not counted as on its way; for an agent. Returns those flagged."""

    def give_up_unrecorded(self, idempotency_key: str) -> LocalPayment | None:
        """``created -> unresolved``: the worker stops asking; still counted as on its way, for an agent to
        decide. None when the payment is no longer ``created`` (so it is given up once)."""

    def mark_refused(self, idempotency_key: str, reason: str) -> LocalPayment | None:
        """The provider refused the request outright (``created -> failed`` with ``reason``)."""

    def get(self, idempotency_key: str) -> LocalPayment | None:
        """By our key."""

    def by_provider_id(self, provider_payment_id: str) -> LocalPayment | None:
        """By the provider's payment id."""

    def settle(self, *, event_id: str, provider_payment_id: str, status: str, reference: str | None,
               token: str | None, failure_reason: str | None,
               post_to_billing: bool = False, owes_token: bool = False) -> tuple[LocalPayment | None, bool]:
        """Apply a provider result once per ``event_id``, only from ``pending`` (or ``unconfirmed``) to a
        final status; returns the payment and whether it changed. ``post_to_billing``: in the same write,
        the payment is marked as owed to billing (``to_post_to_billing``) until ``mark_billing`` says done;
        ``owes_token``: as owing a token (``vend = "due"``, ``to_vend``) until ``record_token``."""

    def to_post_to_billing(self, limit: int = 50) -> list[LocalPayment]:
        """Payments settled by an agent as paid that billing has not recorded yet, oldest first."""

    def mark_billing(self, idempotency_key: str, state: str, said: str | None = None) -> None:
        """Billing recorded the payment (``posted``) or refused it for good (``refused``, for a supervisor,
        with what billing ``said``); only a payment ``due`` to billing moves."""

    def move_billing(self, idempotency_key: str, was: str, state: str, said: str | None = None) -> bool:
        """``billing_post`` from ``was`` to ``state`` (a supervisor's ``refused -> due`` to post it again, or
        ``refused -> handled`` with the reason in ``said``); False when it was not ``was`` (nothing changed)."""

    def to_vend(self, now: datetime, limit: int = 50) -> list[LocalPayment]:
        """Payments owing a token (``vend == "due"``) whose next try is due at ``now``, oldest first."""

    def record_token(self, idempotency_key: str, token: str) -> LocalPayment | None:
        """The vended token kept on a payment owing one (``due`` or ``refused`` -> ``vended``), in one conditional
        update; None when it had one already or owed none (two vends of one payment keep the first)."""

    def note_vend(self, idempotency_key: str, state: str, said: str | None, next_at: datetime | None) -> bool:
        """A vend that did not give the token: ``due`` again at ``next_at`` (unreachable) or ``refused`` (for good,
        with what the vending system ``said``); counts one try. Only a payment owing a token moves."""

    def move_vend(self, idempotency_key: str, was: str, state: str) -> bool:
        """``vend`` from ``was`` to ``state`` (a supervisor's ``refused -> due``), due at once; False when it was
        not ``was``."""

    def recent(self, msisdn: str, limit: int = 5, account_number: str | None = None) -> list[LocalPayment]:
        """The payments ``msisdn`` made, most recent first; only those of ``account_number`` when given."""

    def awaiting(self, account_number: str, purpose: str) -> list[LocalPayment]:
        """The account's payments of ``purpose`` the provider may still debit or has debited unheard
        (``AWAITED_STATUSES``), from any number, oldest first: the back end's balance does not count them yet."""

    def keep_mismatch(self, result: ProviderResult, reasons: list[str], under: str | None = None) -> None:
        """Keep a provider result that does not match the ledger, for an agent (never applied); ``under``:
        the ledger's id of the payment when the result's own id is not it (kept once per ``event_id``)."""

    def due_for_status(self, now: datetime, after_seconds: int, limit: int = 50) -> list[LocalPayment]:
        """Pending payments not heard of for ``after_seconds`` (since pending, or since the last check)."""

    def note_status_check(self, idempotency_key: str, now: datetime) -> int:
        """Count one status question to the provider; returns the count so far."""

    def give_up(self, idempotency_key: str) -> LocalPayment | None:
        """pending -> unconfirmed (the provider never told us); None when no longer pending."""


# ---------------------------------------------------------------- tickets kept locally
@dataclass(frozen=True, slots=True)
class PendingTicket:
    client_reference: str
    msisdn: str
    account_number: str
    kind: str
    category: str
    description: str
    status: str                 # pending | sent | refused
    ticket_reference: str | None = None
    bill_id: str | None = None  # the disputed bill of a billing complaint


@runtime_checkable
class PendingTickets(Protocol):
    """Reports the incident system could not take yet; sent again later, never lost."""

    def add(self, ticket: PendingTicket) -> None:
        """Keep it (idempotent by client_reference)."""

    def due(self, limit: int = 50) -> list[PendingTicket]:
        """Still to send, oldest first."""

    def mark_sent(self, client_reference: str, ticket_reference: str) -> None:
        """The incident system took it under this reference."""

    def mark_refused(self, client_reference: str, reason: str) -> None:
        """The incident system will never take it (invalid for it): stop sending, keep it for agents."""

    def for_user(self, msisdn: str) -> list[PendingTicket]:
        """Those of a number, sent or not, most recent first."""


# ---------------------------------------------------------------- guessing limits
@runtime_checkable
class Throttle(WindowCounter, Protocol):
    """Counts attempts per key over a window, across sessions and workers (brute-force limits). Every
    method may raise ``BackendUnavailable`` (the counter unreachable): a step then counts nothing, sends
    nothing, and the customer is told to try again (the step's ``backend_down``)."""

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one attempt; False when ``key`` already made ``limit`` attempts in the window."""

    def count(self, key: str) -> int:
        """The attempts ``key`` made in its current window (0 once it ended), counting none."""

    def reset(self, key: str) -> None:
        """Forget the attempts of ``key`` (after a success)."""
