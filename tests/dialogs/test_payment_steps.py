"""The Pay journey's steps, one at a time, against a real ledger and outbox (SQLite) and an in-memory
provider and billing system: what the customer is told, what the provider is asked, what the ledger keeps.

Quick enough for ``make mutation`` to run them for every mutant of ``dialogs/payments.py``; the USSD
transcripts (``tests/channels/test_ussd_payments.py``) walk the same paths end to end.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError

from app.storage import SqlOutbox, SqlPaymentLedger, SqlPreferences, SqlSubscriptions, make_sessions, migrate
from app.storage.models import PaymentIntentRow
from app.storage.outbox_seal import OutboxSeal
from app.storage.repositories import SqlAccountLinks
from app.storage.throttle import MemoryThrottle
from dialogs.backends import (
    BackendUnavailable,
    Balance,
    Conflict,
    NotFound,
    NotSent,
    PaymentIntent,
    PaymentRecord,
    Rejected,
)
from dialogs.payments import (
    KeyAnswer,
    ask_by_key,
    idempotency_key,
    post_owed_to_billing,
    post_to_billing,
    reconcile_pending,
    settle_by_agent,
    settle_provider_result,
)
from dialogs.registry import Deps, DialogRegistry, DialogSettings
from dialogs.stores import LocalPayment, ProviderResult
from engine.security_audit import SecurityEvent
from engine.steps import StepContext, StepResult
from tests.support.present import present

NUMBER = "+221770000001"
ACCOUNT = "1000001"
CALLBACK = "https://engine.example/payments/callback"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
WALLET = {"code": "wave", "name": "Wave"}


class Billing:
    """The billing system: one account whose balance the test sets (any other is not found, as the
    back office answers); ``down`` makes it unreachable."""

    def __init__(self, amount: str = "12500") -> None:
        self.amount, self.down, self.asked, self.requests = Decimal(amount), False, 0, 0
        self.posts: list[dict[str, Any]] = []      # each post_payment request, as billing received it
        self.refuse: Exception | None = None       # post_payment raises it (billing down, or refusing)

    def post_payment(self, account_number: str, *, payment_id: str, amount: Decimal, currency: str,
                     reference: str | None, idempotency_key: str, payment_key: str | None = None) -> PaymentRecord:
        if self.refuse is not None:
            raise self.refuse
        self.posts.append({"account_number": account_number, "payment_id": payment_id, "amount": amount,
                           "currency": currency, "reference": reference, "idempotency_key": idempotency_key,
                           "payment_key": payment_key})
        return PaymentRecord(payment_id, reference or payment_id, amount, currency, NOW, "agent")

    def _balance(self, account_number: str) -> Balance:
        self.asked += 1
        if self.down:
            raise BackendUnavailable("billing down")
        if account_number != ACCOUNT:
            raise NotFound(account_number)
        return Balance(account_number, self.amount, "XOF", 2 if self.amount > 0 else 0, None)

    def balance(self, account_number: str) -> Balance:
        self.requests += 1
        return self._balance(account_number)

    def arrangements(self, account_number: str) -> list[Any]:
        self.requests += 1
        return []                                       # no deferral or instalment plan running

    def balance_and_arrangements(self, account_number: str) -> tuple[Balance, list[Any]]:
        self.requests += 1                              # one request answers both (?include=arrangements)
        return self._balance(account_number), []


class Provider:
    """The mobile-money provider: idempotent by key, as its contract says; ``fail`` raises on initiation."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.fail: Exception | None = None
        self.lose_answer = False          # start the payment, then raise as if the answer was lost
        self.unreachable = False          # asking by key fails (BackendUnavailable)
        self.answers: dict[str, PaymentIntent | Exception] = {}

    def initiate(self, *, account_number: str, msisdn: str, amount: Decimal, purpose: str,
                 idempotency_key: str, callback_url: str, wallet: str | None = None) -> PaymentIntent:
        if self.fail is not None:
            raise self.fail
        asked = {"account_number": account_number, "msisdn": msisdn, "amount": amount, "purpose": purpose,
                 "callback_url": callback_url, "wallet": wallet}
        known = self.started.setdefault(idempotency_key, {**asked, "id": f"PAY-{len(self.started) + 1:04d}"})
        if self.lose_answer:
            raise BackendUnavailable("read timeout")
        return PaymentIntent(known["id"], "pending", amount, "XOF", purpose, account_number,  # type: ignore[arg-type]
                             msisdn=msisdn)

    def by_key(self, idempotency_key: str) -> PaymentIntent | None:
        if self.unreachable:
            raise BackendUnavailable("down")
        known = self.started.get(idempotency_key)
        if known is None:
            return None
        answer = self.answers.get(known["id"])
        if isinstance(answer, Exception):
            raise answer
        return answer or PaymentIntent(known["id"], "pending", known["amount"], "XOF", known["purpose"],
                                       known["account_number"], msisdn=known["msisdn"],
                                       idempotency_key=idempotency_key)

    def status(self, payment_id: str) -> PaymentIntent:
        answer = self.answers.get(payment_id)
        if answer is None:
            raise NotFound(payment_id)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Audit:
    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []

    def record(self, event: SecurityEvent) -> None:
        self.events.append(event)


@pytest.fixture
def billing() -> Billing:
    return Billing()


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def deps(engine_db: str, billing: Billing, provider: Provider, audit: Audit) -> Deps:
    sessions = make_sessions(engine_db)
    return Deps(billing=billing, links=None, preferences=None, throttle=MemoryThrottle(), payments=provider,  # type: ignore[arg-type]
                ledger=SqlPaymentLedger(sessions), outbox=SqlOutbox(sessions, OutboxSeal([Fernet.generate_key()])),
                security=audit, settings=DialogSettings(payment_callback_url=CALLBACK))


def run(deps: Deps, name: str, session_key: str = "ussd:s1", language: str = "fr", **data: Any) -> StepResult:
    step = DialogRegistry(deps).get(name)
    assert step is not None, name
    return step(StepContext(user_id=NUMBER, channel="ussd", language=language, session_key=session_key,
                            data=MappingProxyType(data), params=MappingProxyType({}),
                            secrets=MappingProxyType({}), now=NOW))


def confirmed(amount: str = "12500", purpose: str = "bill", **more: Any) -> dict[str, Any]:
    """The context of a customer who confirmed a payment and passed the PIN gate."""
    return {"account_number": ACCOUNT, "pay_amount": amount, "pay_purpose": purpose, "pay_wallet": WALLET,
            "pin_verified": "pay_initiate", **more}


def ledger_rows(deps: Deps) -> list[Any]:
    assert deps.ledger is not None
    return deps.ledger.recent(NUMBER, limit=50)


# ---------------------------------------------------------------- choosing the amount
def test_the_pay_menu_starts_from_the_balance_and_forgets_an_earlier_payment(deps):
    earlier = {"pay_amount": "500", "pay_reference": "PAY-0001", "pay_refusal": "insufficient_funds"}
    started = run(deps, "payments.start", account_number=ACCOUNT, **earlier)
    assert started.outcome == "bill"
    assert started.data["balance"] == "12500" and started.data["unpaid_bills"] == 2
    assert started.data["has_balance"] is True and started.data["pay_purpose"] == "bill"
    assert all(started.data[k] is None for k in ("pay_amount", "pay_amount_input", "pay_reference", "pay_wallet",
                                                 "pay_refusal"))
    assert started.data["pay_wallets"] == [{"code": "orange_money", "name": "Orange Money"},
                                           {"code": "wave", "name": "Wave"},
                                           {"code": "free_money", "name": "Free Money"}]


def test_nothing_due_no_account_and_prepaid_each_get_their_own_answer(deps, billing):
    assert run(deps, "payments.start").outcome == "no_account"
    prepaid = run(deps, "payments.start", account_number="3000001", account_kind="prepaid")
    assert (prepaid.outcome, prepaid.data["pay_purpose"]) == ("prepaid", "prepaid")
    assert prepaid.data["pay_wallets"][0] == {"code": "orange_money", "name": "Orange Money"}
    assert billing.asked == 0     # a prepaid meter has no balance to read
    billing.amount = Decimal(0)
    nothing = run(deps, "payments.start", account_number=ACCOUNT)
    assert (nothing.outcome, nothing.data["has_balance"]) == ("nothing_due", False)


def test_paying_the_whole_balance_reads_it_again(deps, billing):
    billing.amount = Decimal(9000)      # changed since the menu was shown
    full = run(deps, "payments.full", account_number=ACCOUNT)
    assert full.outcome == "ok"
    assert (full.data["pay_amount"], full.data["pay_purpose"], full.data["balance"]) == ("9000", "bill", "9000")
    assert full.data["has_balance"] is True


@pytest.mark.parametrize(("balance", "outcome"), [("0", "nothing_due"), ("-500", "nothing_due"), ("1", "out_of_range"),
                                                  ("99", "out_of_range"),
                                                  ("100", "ok"), ("2000000", "ok"), ("2000001", "out_of_range"),
                                                  ("150.50", "out_of_range")])
def test_the_whole_balance_is_paid_only_when_it_is_a_payable_amount(deps, billing, balance, outcome):
    billing.amount = Decimal(balance)
    full = run(deps, "payments.full", account_number=ACCOUNT)
    assert full.outcome == outcome
    assert full.data["balance"] == balance and full.data["has_balance"] is (Decimal(balance) > 0)
    assert ("pay_amount" in full.data) is (outcome == "ok")


# ---------------------------------------------------------------- payments on their way
def on_its_way(deps: Deps, amount: str, session_key: str = "ussd:other", status: str = "pending",
               account: str = ACCOUNT) -> None:
    """A bill payment another session (or another number) started: accepted by the provider, unsettled."""
    assert deps.ledger is not None
    key = idempotency_key(session_key, "pay_initiate", "bill", account, Decimal(amount), "wave")
    deps.ledger.create(idempotency_key=key, msisdn="+221770000009", account_number=account, purpose="bill",
                       amount=Decimal(amount), language="fr", wallet="wave")
    if status == "not_started":
        deps.ledger.mark_not_started(key)
    elif status == "unresolved":
        deps.ledger.give_up_unrecorded(key)
    elif status != "created":
        deps.ledger.mark_pending(key, f"PAY-{session_key}-{amount}")
    if status == "unconfirmed":
        deps.ledger.give_up(key)
    elif status in ("succeeded", "failed"):
        deps.ledger.settle(event_id=f"ev-{key}", provider_payment_id=f"PAY-{session_key}-{amount}", status=status,
                           reference=None, token=None, failure_reason=None)


def test_a_payment_on_its_way_is_taken_off_what_may_still_be_paid(deps, billing):
    on_its_way(deps, "5000")
    on_its_way(deps, "2000", session_key="ussd:third", status="unconfirmed")   # may have been debited: counted
    started = run(deps, "payments.start", account_number=ACCOUNT)
    assert started.outcome == "bill_awaiting"
    assert (started.data["balance"], started.data["pay_awaiting"]) == ("5500", "7000")
    assert started.data["has_balance"] is True and started.data["unpaid_bills"] == 2
    full = run(deps, "payments.full", account_number=ACCOUNT)
    assert (full.outcome, full.data["pay_amount"], full.data["balance"]) == ("ok", "5500", "5500")
    assert run(deps, "payments.check_amount", account_number=ACCOUNT, pay_amount_input="5501").outcome == "above_balance"
    typed = run(deps, "payments.check_amount", account_number=ACCOUNT, pay_amount_input="5500")
    assert (typed.outcome, typed.data["pay_amount"]) == ("ok", "5500")


def test_payments_that_pay_it_all_leave_nothing_to_pay_and_say_so(deps, billing):
    on_its_way(deps, "12500")
    for step, more in (("payments.start", {}), ("payments.full", {}),
                       ("payments.check_amount", {"pay_amount_input": "100"})):
        told = run(deps, step, account_number=ACCOUNT, **more)
        assert (told.outcome, told.data["pay_awaiting"], told.data["balance"]) == ("awaiting", "12500", "0"), step
        assert told.data["has_balance"] is True


@pytest.mark.parametrize("status", ["created", "unresolved"])
def test_a_payment_whose_provider_id_we_never_recorded_counts_as_on_its_way(deps, billing, status):
    # created: the provider may have started it (our write of its id failed, or its answer was lost);
    # unresolved: the worker gave up asking, an agent decides. Either may have debited the wallet.
    on_its_way(deps, "5000", status=status)
    started = run(deps, "payments.start", account_number=ACCOUNT)
    assert (started.outcome, started.data["balance"], started.data["pay_awaiting"]) == ("bill_awaiting", "7500",
                                                                                       "5000")
    assert run(deps, "payments.check_amount", account_number=ACCOUNT, pay_amount_input="7501").outcome == "above_balance"


@pytest.mark.parametrize("status", ["not_started", "failed", "succeeded"])
def test_payments_not_on_their_way_hold_nothing_back(deps, billing, status):
    # not_started: the provider never got it (nothing debited); failed; succeeded: in the balance already.
    on_its_way(deps, "5000", status=status)
    on_its_way(deps, "3000", account="1000002")        # another account's payment
    started = run(deps, "payments.start", account_number=ACCOUNT)
    assert (started.outcome, started.data["balance"], started.data["pay_awaiting"]) == ("bill", "12500", None)


def test_a_payment_started_in_this_very_session_is_not_counted_against_it(deps, billing):
    # The session lost, the gateway's hop walked again from its text: the same payment must come back.
    on_its_way(deps, "12500", session_key="ussd:s1")
    full = run(deps, "payments.full", account_number=ACCOUNT)
    assert (full.outcome, full.data["pay_amount"], full.data["pay_awaiting"]) == ("ok", "12500", None)


def test_the_balance_and_the_pay_menu_count_this_conversations_own_payment_alike(deps, billing):
    # This conversation started a payment of 5 000 (its key in the session); the provider took it, unsettled.
    started = run(deps, "payments.initiate", **confirmed("5000"))
    assert started.outcome == "started"
    session = {"account_number": ACCOUNT, "pay_key": started.data["pay_key"]}
    balance = run(deps, "billing.balance", **session)
    pay = run(deps, "payments.start", **session)
    assert (balance.outcome, balance.data["balance"], balance.data["pay_awaiting"]) == ("awaiting", "7500", "5000")
    assert (pay.outcome, pay.data["balance"], pay.data["pay_awaiting"]) == ("bill_awaiting", "7500", "5000")
    # Paying all that is left pays 7 500, not the 12 500 the back end still shows.
    assert run(deps, "payments.full", **session).data["pay_amount"] == "7500"


def test_the_balance_screen_asks_billing_once(deps, billing):
    shown = run(deps, "billing.balance", account_number=ACCOUNT)
    assert (shown.outcome, shown.data["balance"], billing.requests) == ("ok", "12500", 1)
    billing.down = True
    assert run(deps, "billing.balance", account_number=ACCOUNT).outcome == "backend_down"


def test_a_walk_after_the_session_was_lost_finds_its_payment_on_both_screens_alike(deps, billing):
    # The same conversation without its session (the gateway's text walked again): the payment is found again.
    started = run(deps, "payments.initiate", **confirmed("5000"))
    walked = {"account_number": ACCOUNT}
    assert run(deps, "billing.balance", **walked).data["balance"] == "12500"
    assert run(deps, "payments.start", **walked).data["balance"] == "12500"
    again = run(deps, "payments.initiate", **confirmed("5000"))
    assert (again.outcome, again.data["pay_key"]) == ("started", started.data["pay_key"])


def test_a_payment_confirmed_while_another_went_on_its_way_is_stopped_at_the_pin(deps, billing, provider):
    on_its_way(deps, "5000")
    refused = run(deps, "payments.initiate", **confirmed())
    assert (refused.outcome, refused.data["balance"], refused.data["pay_awaiting"]) == ("above_balance", "7500",
                                                                                        "5000")
    assert provider.started == {}
    assert run(deps, "payments.initiate", **confirmed("7500")).outcome == "started"


@pytest.mark.parametrize(("typed", "outcome"), [
    ("12500", "ok"),            # exactly what is owed
    ("12501", "above_balance"),  # one franc more
    ("100", "ok"), ("99", "out_of_range"), ("0", "out_of_range"), ("-100", "out_of_range"),
    ("2000001", "out_of_range"), ("150.5", "out_of_range"), ("1e3", "ok"), ("abc", "out_of_range"),
    ("NaN", "out_of_range"), ("Infinity", "out_of_range"), ("", "out_of_range"),
])
def test_a_typed_amount_is_whole_in_range_and_not_above_the_balance(deps, typed, outcome):
    checked = run(deps, "payments.check_amount", account_number=ACCOUNT, pay_amount_input=typed)
    assert checked.outcome == outcome
    if outcome == "ok":
        assert checked.data["pay_amount"] == str(int(Decimal(typed)))
        assert (checked.data["pay_purpose"], checked.data["balance"]) == ("bill", "12500")
    if outcome == "above_balance":
        assert (checked.data["balance"], checked.data["has_balance"]) == ("12500", True)
        assert "pay_amount" not in checked.data


def test_a_large_balance_takes_the_largest_payment_and_no_more(deps, billing):
    billing.amount = Decimal(3_000_000)
    assert run(deps, "payments.check_amount", account_number=ACCOUNT, pay_amount_input="2000000").outcome == "ok"
    assert run(deps, "payments.check_amount", account_number=ACCOUNT,
               pay_amount_input="2000001").outcome == "out_of_range"


def test_a_balance_of_one_franc_is_owed_not_settled(deps, billing):
    billing.amount = Decimal(1)
    started = run(deps, "payments.start", account_number=ACCOUNT)
    assert (started.outcome, started.data["has_balance"]) == ("bill", True)
    checked = run(deps, "payments.check_amount", account_number=ACCOUNT, pay_amount_input="100")
    assert (checked.outcome, checked.data["has_balance"]) == ("above_balance", True)
    refused = run(deps, "payments.initiate", **confirmed("100"))
    assert (refused.outcome, refused.data["balance"]) == ("above_balance", "1")


def test_a_typed_amount_on_a_settled_account_is_nothing_due(deps, billing):
    billing.amount = Decimal(0)
    checked = run(deps, "payments.check_amount", account_number=ACCOUNT, pay_amount_input="500")
    assert (checked.outcome, checked.data["balance"], checked.data["has_balance"]) == ("nothing_due", "0", False)


METER = "3000001"   # a prepaid meter's account


def purchase_on_its_way(deps: Deps, amount: str, session_key: str = "ussd:other", account: str = METER,
                        status: str = "pending") -> None:
    """A prepaid purchase another session started: accepted by the provider, its token not come yet."""
    assert deps.ledger is not None
    key = idempotency_key(session_key, "pay_initiate", "prepaid", account, Decimal(amount), "wave")
    deps.ledger.create(idempotency_key=key, msisdn="+221770000009", account_number=account, purpose="prepaid",
                       amount=Decimal(amount), language="fr", wallet="wave")
    if status == "pending":
        deps.ledger.mark_pending(key, f"PAY-{session_key}-{amount}")
    else:
        deps.ledger.mark_not_started(key)


def test_a_purchase_on_its_way_is_said_first_and_buying_the_same_amount_again_is_asked_about(deps):
    purchase_on_its_way(deps, "5000")
    started = run(deps, "payments.start", account_number=METER, account_kind="prepaid")
    assert (started.outcome, started.data["prepaid_awaiting"], started.data["pay_purpose"]) == (
        "prepaid_awaiting", "5000", "prepaid")
    same = run(deps, "payments.check_credit", account_number=METER, pay_amount_input="5000")
    assert (same.outcome, same.data) == ("same_awaiting", {"pay_amount": "5000", "pay_purpose": "prepaid"})
    other = run(deps, "payments.check_credit", account_number=METER, pay_amount_input="3000")
    assert (other.outcome, other.data) == ("ok", {"pay_amount": "3000", "pay_purpose": "prepaid"})


@pytest.mark.parametrize("elsewhere", ["another meter", "a bill payment", "never started", "this walk's own"])
def test_only_a_purchase_on_its_way_to_this_meter_holds_the_same_amount_back(deps, elsewhere):
    if elsewhere == "another meter":
        purchase_on_its_way(deps, "5000", account="3000002")
    elif elsewhere == "a bill payment":
        on_its_way(deps, "5000", account=METER)
    elif elsewhere == "never started":
        purchase_on_its_way(deps, "5000", status="not_started")
    else:   # this conversation's, walked again from the gateway's text after the session was lost
        purchase_on_its_way(deps, "5000", session_key="ussd:s1")
    started = run(deps, "payments.start", account_number=METER, account_kind="prepaid")
    assert (started.outcome, started.data["prepaid_awaiting"]) == ("prepaid", None)
    assert run(deps, "payments.check_credit", account_number=METER, pay_amount_input="5000").outcome == "ok"


@pytest.mark.parametrize(("typed", "outcome"), [("100", "ok"), ("99", "out_of_range"), ("2000000", "ok"),
                                                ("2000001", "out_of_range"), ("500.25", "out_of_range")])
def test_a_prepaid_purchase_is_whole_and_in_range_whatever_the_balance(deps, billing, typed, outcome):
    checked = run(deps, "payments.check_credit", pay_amount_input=typed)
    assert checked.outcome == outcome
    if outcome == "ok":
        assert checked.data == {"pay_amount": typed, "pay_purpose": "prepaid"}
    assert billing.asked == 0


# ---------------------------------------------------------------- starting the payment
def test_a_confirmed_payment_is_on_the_ledger_before_the_provider_starts_it(deps, provider):
    started = run(deps, "payments.initiate", **confirmed())
    assert started.outcome == "started"
    assert started.data["pay_reference"] == "PAY-0001" and started.data["pay_refusal"] is None
    assert "pin_verified" in started.data and started.data["pin_verified"] is None   # the PIN pass is spent
    [(key, asked)] = provider.started.items()
    assert started.data["pay_key"] == key
    assert asked == {"account_number": ACCOUNT, "msisdn": NUMBER, "amount": Decimal(12500), "purpose": "bill",
                     "callback_url": CALLBACK, "wallet": "wave", "id": "PAY-0001"}
    [row] = ledger_rows(deps)
    assert (row.idempotency_key, row.status, row.provider_payment_id) == (key, "pending", "PAY-0001")
    assert (row.amount, row.account_number, row.purpose, row.wallet, row.language) == (
        Decimal(12500), ACCOUNT, "bill", "wave", "fr")


def test_the_payment_is_recorded_in_the_language_the_customer_confirmed_it_in(deps):
    run(deps, "payments.initiate", language="en", **confirmed())
    assert ledger_rows(deps)[0].language == "en"


def test_the_same_payment_confirmed_again_in_the_session_starts_nothing_new(deps, provider):
    """The planted bug "idempotency key not stable": a replayed PIN hop must reuse the key."""
    first = run(deps, "payments.initiate", **confirmed())
    again = run(deps, "payments.initiate", **confirmed())
    assert first.data["pay_key"] == again.data["pay_key"]
    assert again.data["pay_reference"] == first.data["pay_reference"]
    assert len(provider.started) == 1 and len(ledger_rows(deps)) == 1


def test_another_amount_wallet_account_or_session_is_another_payment(deps):
    key = idempotency_key("ussd:s1", "pay_initiate", "bill", ACCOUNT, Decimal(12500), "wave")
    assert key == idempotency_key("ussd:s1", "pay_initiate", "bill", ACCOUNT, Decimal(12500), "wave")
    assert key.startswith("pay-") and len(key) == 44
    others = {idempotency_key("ussd:s2", "pay_initiate", "bill", ACCOUNT, Decimal(12500), "wave"),
              idempotency_key("ussd:s1", "pay_initiate", "prepaid", ACCOUNT, Decimal(12500), "wave"),
              idempotency_key("ussd:s1", "pay_initiate", "bill", "1000002", Decimal(12500), "wave"),
              idempotency_key("ussd:s1", "pay_initiate", "bill", ACCOUNT, Decimal(12000), "wave"),
              idempotency_key("ussd:s1", "pay_initiate", "bill", ACCOUNT, Decimal(12500), "orange_money"),
              idempotency_key("ussd:s1", "other_node", "bill", ACCOUNT, Decimal(12500), "wave")}
    assert key not in others and len(others) == 6


def test_a_replayed_pin_hop_of_a_recorded_payment_needs_no_balance(deps, billing, provider):
    first = run(deps, "payments.initiate", **confirmed())
    billing.down = True      # the replay must not depend on the billing system
    again = run(deps, "payments.initiate", **confirmed())
    assert again.outcome == "started" and again.data["pay_reference"] == first.data["pay_reference"]


def test_without_the_pin_passed_for_the_payment_nothing_starts(deps, provider):
    for gate in (None, "pref_pin_new"):
        asked = run(deps, "payments.initiate", **confirmed(pin_verified=gate))
        assert asked.outcome == "pin_required" and "pin_verified" in asked.data
    assert provider.started == {} and ledger_rows(deps) == []


def test_a_balance_lowered_since_the_confirmation_stops_the_payment(deps, billing, provider):
    billing.amount = Decimal(12000)
    refused = run(deps, "payments.initiate", **confirmed())
    assert (refused.outcome, refused.data["balance"]) == ("above_balance", "12000")
    assert provider.started == {} and ledger_rows(deps) == []
    billing.amount = Decimal(12500)       # exactly the amount: it goes
    assert run(deps, "payments.initiate", **confirmed()).outcome == "started"


def test_a_payment_stopped_by_a_lowered_balance_asks_for_the_pin_again_before_any_other_try(deps, billing,
                                                                                          provider):
    billing.amount = Decimal(12000)
    refused = run(deps, "payments.initiate", **confirmed())
    assert refused.outcome == "above_balance"
    billing.amount = Decimal(12500)
    again = run(deps, "payments.initiate", **{**confirmed(), **refused.data})   # the session after the refusal
    assert again.outcome == "pin_required"
    assert provider.started == {} and ledger_rows(deps) == []


def test_a_confirmation_that_lost_its_purpose_is_paid_as_a_bill_within_the_balance(deps, billing, provider):
    context = {k: v for k, v in confirmed().items() if k != "pay_purpose"}
    billing.amount = Decimal(12000)
    assert run(deps, "payments.initiate", **context).outcome == "above_balance"
    billing.amount = Decimal(12500)
    assert run(deps, "payments.initiate", **context).outcome == "started"
    assert [asked["purpose"] for asked in provider.started.values()] == ["bill"]
    assert [row.purpose for row in ledger_rows(deps)] == ["bill"]


def test_a_payment_refused_on_one_wallet_can_be_paid_with_another_in_the_same_session(deps, provider):
    provider.fail = Rejected("no money", code="insufficient_funds")
    orange = {"code": "orange_money", "name": "Orange Money"}
    refused = run(deps, "payments.initiate", **confirmed(pay_wallet=orange))
    assert (refused.outcome, refused.data["pay_refusal"]) == ("refused", "insufficient_funds")
    provider.fail = None
    started = run(deps, "payments.initiate", **confirmed())     # same amount, now with Wave
    assert started.outcome == "started"
    assert [asked["wallet"] for asked in provider.started.values()] == ["wave"]
    assert sorted((row.wallet, row.status) for row in ledger_rows(deps)) == [("orange_money", "failed"),
                                                                             ("wave", "pending")]


def test_a_prepaid_purchase_does_not_read_a_balance(deps, billing, provider):
    billing.amount = Decimal(0)
    started = run(deps, "payments.initiate", **confirmed("5000", "prepaid", account_number="3000001"))
    assert started.outcome == "started" and billing.asked == 0
    assert next(iter(provider.started.values()))["purpose"] == "prepaid"


def test_the_billing_system_down_before_a_bill_payment_starts_nothing(deps, billing, provider):
    billing.down = True
    down = run(deps, "payments.initiate", **confirmed())
    assert down.outcome == "backend_down" and "pin_verified" in down.data
    assert provider.started == {} and ledger_rows(deps) == []


def test_the_provider_never_reached_leaves_the_payment_not_started_and_safe_to_retry(deps, provider, billing):
    provider.fail = NotSent("connection refused")
    down = run(deps, "payments.initiate", **confirmed())
    assert down.outcome == "backend_down"
    [row] = ledger_rows(deps)
    assert (row.status, row.provider_payment_id, row.idempotency_key) == ("not_started", None, down.data["pay_key"])
    # Told nothing was charged, the customer may pay again: nothing is held back.
    assert run(deps, "payments.start", account_number=ACCOUNT, pay_key=down.data["pay_key"]).outcome == "bill"
    provider.fail = None
    assert run(deps, "payments.initiate", **confirmed()).outcome == "started"
    assert [r.status for r in ledger_rows(deps)] == ["pending"]


def test_a_provider_that_may_have_taken_the_payment_leaves_it_on_its_way(deps, provider, billing):
    provider.fail = BackendUnavailable("ReadTimeoutError")      # sent; no answer: it may have started it
    unsure = run(deps, "payments.initiate", **confirmed("5000"))
    assert unsure.outcome == "unsure"
    [row] = ledger_rows(deps)
    assert (row.status, row.provider_payment_id) == ("created", None)
    again = run(deps, "payments.start", account_number=ACCOUNT, pay_key=unsure.data["pay_key"])
    assert (again.outcome, again.data["balance"], again.data["pay_awaiting"]) == ("bill_awaiting", "7500", "5000")
    provider.fail = None                                        # the same key again: one payment
    assert run(deps, "payments.initiate", **confirmed("5000")).outcome == "started"
    assert [r.status for r in ledger_rows(deps)] == ["pending"]


@pytest.mark.parametrize(("error", "told"), [
    (Rejected("no money", code="insufficient_funds"), "insufficient_funds"),
    (Rejected("limit", code="wallet_limit_exceeded"), "wallet_limit_exceeded"),
    (Rejected("who?", code="wallet_not_found"), "wallet_not_found"),
    (Rejected("no", code="declined_by_customer"), "declined_by_customer"),
    (Rejected("odd", code="something_else"), "payment_refused"),
    (Rejected("odd"), "payment_refused"),
    (Conflict("key reused"), "payment_refused"),
])
def test_a_payment_the_provider_refuses_is_failed_with_the_reason_the_customer_is_told(deps, provider, error,
                                                                                       told):
    provider.fail = error
    refused = run(deps, "payments.initiate", **{**confirmed(), "pay_refusal": "stale"})
    assert (refused.outcome, refused.data["pay_refusal"]) == ("refused", told)
    [row] = ledger_rows(deps)
    assert (row.status, row.failure_reason) == ("failed", told)


@pytest.mark.parametrize("change", [{"pay_amount": "99"}, {"pay_amount": "2000001"}, {"pay_amount": "1.5"},
                                    {"account_number": ""}, {"pay_wallet": {"code": "paypal"}},
                                    {"pay_wallet": {"name": "Wave"}}, {"pay_wallet": {"code": ["wave"]}},
                                    {"pay_wallet": "wave"}, {"pay_wallet": None}])
def test_a_payment_that_is_not_one_the_customer_could_confirm_is_refused(deps, provider, change):
    refused = run(deps, "payments.initiate", **{**confirmed(), **change})
    assert (refused.outcome, refused.data["pay_refusal"]) == ("refused", "payment_refused")
    assert "pin_verified" in refused.data
    assert provider.started == {} and ledger_rows(deps) == []


def test_the_wallets_offered_come_from_the_settings(deps):
    only_wave = replace(deps, settings=DialogSettings(payment_callback_url=CALLBACK, wallets=(("wave", "Wave"),)))
    assert run(only_wave, "payments.start", account_number=ACCOUNT).data["pay_wallets"] == [
        {"code": "wave", "name": "Wave"}]
    refused = run(only_wave, "payments.initiate", **confirmed(pay_wallet={"code": "orange_money"}))
    assert refused.outcome == "refused"


# ---------------------------------------------------------------- the customer's last payments
def test_the_last_payments_list_every_status_newest_first(deps, provider):
    assert run(deps, "payments.recent", account_number=ACCOUNT).outcome == "none"
    run(deps, "payments.initiate", **confirmed("5000", "prepaid"))
    provider.fail = Rejected("no money", code="insufficient_funds")
    run(deps, "payments.initiate", session_key="ussd:s2", **confirmed())
    listed = run(deps, "payments.recent", account_number=ACCOUNT)
    assert listed.outcome == "ok" and listed.data["pay_item"] is None
    refused, prepaid = listed.data["pay_list"]
    assert refused == {"amount": "12500", "status": "failed", "purpose": "bill", "account_number": ACCOUNT,
                       "reference": None, "payment_id": "-", "token": None, "failure_reason": "insufficient_funds",
                       "created_at": refused["created_at"]}
    assert datetime.fromisoformat(refused["created_at"]).tzinfo is not None
    assert prepaid["status"] == "pending" and prepaid["payment_id"] == "PAY-0001"
    assert prepaid["failure_reason"] is None


def test_the_last_payments_are_this_numbers_to_the_current_account_only(deps):
    run(deps, "payments.initiate", **confirmed("5000", "prepaid", account_number="3000001"))
    run(deps, "payments.initiate", session_key="ussd:s2", **confirmed("7000"))
    assert deps.ledger is not None
    # Another number linked to the same account paid too: its receipt is not this number's to read.
    deps.ledger.create(idempotency_key="other", msisdn="+221770000777", account_number=ACCOUNT, purpose="bill",
                       amount=Decimal(900), wallet="wave")
    assert [p["amount"] for p in run(deps, "payments.recent", account_number=ACCOUNT).data["pay_list"]] == ["7000"]
    [prepaid] = run(deps, "payments.recent", account_number="3000001").data["pay_list"]
    assert (prepaid["amount"], prepaid["account_number"]) == ("5000", "3000001")
    # No current account (never the case behind the Pay menu): nothing is listed rather than everything.
    assert run(deps, "payments.recent").outcome == "none"


def test_only_the_five_last_payments_are_listed(deps):
    for amount in range(100, 800, 100):
        run(deps, "payments.initiate", **confirmed(str(amount)))
    listed = run(deps, "payments.recent", account_number=ACCOUNT).data["pay_list"]
    assert [p["amount"] for p in listed] == ["700", "600", "500", "400", "300"]


# ---------------------------------------------------------------- the provider's word
def pending(deps: Deps, provider_id: str = "PAY-0001", amount: str = "12500", language: str = "fr",
            purpose: str = "bill") -> str:
    assert deps.ledger is not None
    key = f"key-{provider_id}"
    deps.ledger.create(idempotency_key=key, msisdn=NUMBER, account_number=ACCOUNT, purpose=purpose,
                       amount=Decimal(amount), language=language)
    deps.ledger.mark_pending(key, provider_id)
    return provider_id


def result(payment_id: str = "PAY-0001", status: str = "succeeded", event_id: str = "EV-1",
           source: str = "callback", **change: Any) -> ProviderResult:
    fields: dict[str, Any] = {"amount": Decimal(12500), "currency": "XOF", "account_number": ACCOUNT,
                              "msisdn": NUMBER, "reference": "MM1" if status == "succeeded" else None,
                              "token": None, "failure_reason": None if status == "succeeded" else "insufficient_funds"}
    return ProviderResult(event_id=event_id, payment_id=payment_id, status=status, source=source,
                          **{**fields, **change})


def outbox(deps: Deps) -> list[tuple[str, str, str, dict[str, Any], str]]:
    assert isinstance(deps.outbox, SqlOutbox)
    return [(e["kind"], e["msisdn"], e["language"], e["payload"], e["dedupe_key"]) for e in deps.outbox.pending()]


def test_a_success_settles_the_payment_and_queues_one_receipt(deps):
    pending(deps, language="en")
    settled = settle_provider_result(deps, result(token="12345678901234567890"))
    assert settled.changed and settled.mismatch == () and present(settled.payment).status == "succeeded"
    assert outbox(deps) == [("payment_receipt", NUMBER, "en", {
        "payment_id": "PAY-0001", "reference": "MM1", "amount": "12500", "account_number": ACCOUNT,
        "purpose": "bill", "token": "12345678901234567890", "failure_reason": None}, "payment:PAY-0001:succeeded")]
    again = settle_provider_result(deps, result())
    assert (again.changed, again.mismatch, present(again.payment).status) == (False, (), "succeeded")
    assert len(outbox(deps)) == 1


WATCHER, OTHER_WATCHER, QUIET_WATCHER = "+221770000002", "+221770000004", "+221770000005"


def test_the_alert_payment_by_another_number_reaches_each_watcher_in_their_language_without_the_payers_secrets(
        deps, engine_db):
    sessions = make_sessions(engine_db)
    subscriptions, preferences, links = SqlSubscriptions(sessions), SqlPreferences(sessions), SqlAccountLinks(sessions)
    watched = replace(deps, subscriptions=subscriptions, preferences=preferences, links=links)
    for msisdn in (WATCHER, OTHER_WATCHER, QUIET_WATCHER, "+221770000007"):
        links.link(msisdn, ACCOUNT, "self-service")
    links.link("+221770000006", "1000002", "self-service")
    # A number the holder unlinked keeps its subscription row, not its right to hear of the account's payments.
    subscriptions.subscribe("+221770000008", "payment_received", ACCOUNT, language="fr")
    # The payer watches first (oldest first): the receipt only, and the watchers after still hear it.
    subscriptions.subscribe(NUMBER, "payment_received", ACCOUNT, language="fr")      # the payer: the receipt only
    subscriptions.subscribe(WATCHER, "payment_received", ACCOUNT, language="en")        # her alert's language
    subscriptions.subscribe(OTHER_WATCHER, "payment_received", ACCOUNT, language="en")
    preferences.set_language(OTHER_WATCHER, "fr")                                   # chose French since
    subscriptions.subscribe(QUIET_WATCHER, "payment_received", ACCOUNT)              # no language said anywhere
    subscriptions.subscribe("+221770000006", "payment_received", "1000002", language="fr")   # another account
    subscriptions.subscribe("+221770000007", "payment_received", ACCOUNT, language="fr")
    subscriptions.unsubscribe("+221770000007", "payment_received", ACCOUNT)          # switched off
    pending(watched, language="en")
    settle_provider_result(watched, result(token="12345678901234567890"))
    told = {msisdn: (kind, language, payload, dedupe) for kind, msisdn, language, payload, dedupe in outbox(watched)}
    assert set(told) == {NUMBER, WATCHER, OTHER_WATCHER, QUIET_WATCHER}
    assert told[NUMBER][0] == "payment_receipt"
    alert = {"amount": "12500", "account_number": ACCOUNT, "purpose": "bill", "reference": "MM1"}   # no token
    assert {m: told[m][:3] for m in (WATCHER, OTHER_WATCHER, QUIET_WATCHER)} == {
        WATCHER: ("payment_received", "en", alert), OTHER_WATCHER: ("payment_received", "fr", alert),
        QUIET_WATCHER: ("payment_received", "en", alert)}       # the payment's language
    # One alert per payment and number, under a key that names neither the number nor the token in clear.
    keys = [told[m][3] for m in (WATCHER, OTHER_WATCHER, QUIET_WATCHER)]
    assert len(set(keys)) == 3
    assert all(re.fullmatch(r"payment:PAY-0001:received:[0-9a-f]{16}", key) for key in keys)
    settle_provider_result(watched, result(event_id="EV-2"))                         # the provider's retry
    assert len(outbox(watched)) == 4
    # Without a preferences store (a channel that keeps none), the subscription's language still speaks.
    pending(watched, "PAY-0002", language="fr")
    settle_provider_result(replace(watched, preferences=None), result("PAY-0002", event_id="EV-3"))
    assert {e[1]: e[2] for e in outbox(watched) if e[4].startswith("payment:PAY-0002:received:")} == {
        WATCHER: "en", OTHER_WATCHER: "en", QUIET_WATCHER: "fr"}


def test_a_failed_payment_tells_no_watcher(deps, engine_db):
    subscriptions = SqlSubscriptions(make_sessions(engine_db))
    watched = replace(deps, subscriptions=subscriptions)
    subscriptions.subscribe(WATCHER, "payment_received", ACCOUNT, language="en")
    pending(watched)
    settle_provider_result(watched, result(status="failed"))
    assert [(kind, msisdn) for kind, msisdn, *_ in outbox(watched)] == [("payment_failed", NUMBER)]


def test_a_failure_is_applied_with_its_reason_and_a_notice(deps):
    pending(deps)
    settled = settle_provider_result(deps, result(status="failed"))
    assert settled.changed and present(settled.payment).status == "failed"
    assert present(settled.payment).failure_reason == "insufficient_funds"
    [(kind, _, _, payload, dedupe)] = outbox(deps)
    assert (kind, payload["failure_reason"], dedupe) == ("payment_failed", "insufficient_funds",
                                                          "payment:PAY-0001:failed")


def test_an_unknown_payment_changes_nothing(deps):
    settled = settle_provider_result(deps, result("PAY-9999"))
    assert (settled.payment, settled.changed, settled.mismatch) == (None, False, ())
    assert outbox(deps) == []


@pytest.mark.parametrize(("change", "reasons"), [
    ({"amount": Decimal(1)}, ("amount",)), ({"amount": None}, ("amount",)),
    ({"currency": "EUR"}, ("currency",)), ({"currency": None}, ("currency",)),
    ({"account_number": "9999999"}, ("account_number",)), ({"account_number": None}, ("account_number",)),
    ({"msisdn": "+221779999999"}, ("msisdn",)), ({"msisdn": None}, ("msisdn",)),
    ({"amount": Decimal(1), "account_number": "9999999"}, ("amount", "account_number")),
])
def test_a_result_that_disagrees_with_the_ledger_is_kept_for_an_agent_and_audited(deps, audit, change, reasons):
    pending(deps)
    settled = settle_provider_result(deps, result(source="status", **change))
    assert (settled.changed, settled.mismatch, present(settled.payment).status) == (False, reasons, "pending")
    assert outbox(deps) == []
    assert deps.ledger is not None
    [kept] = deps.ledger.mismatches("PAY-0001")
    assert (kept["source"], kept["reasons"], kept["status"]) == ("status", ",".join(reasons), "open")
    [event] = audit.events
    assert (event.kind, event.channel, event.subject, event.account) == (
        "callback_mismatch", "payment_status", NUMBER, ACCOUNT)
    assert event.detail == "disagrees on " + ",".join(reasons)


class PurgedWhileSettling(SqlPaymentLedger):
    """The ledger when the retention purge deletes the payment between its reading and its settling."""

    def settle(self, **given: Any) -> tuple[Any, bool]:
        with self._sessions() as db:
            db.execute(delete(PaymentIntentRow)
                       .where(PaymentIntentRow.provider_payment_id == given["provider_payment_id"]))
            db.commit()
        return super().settle(**given)


def test_a_late_result_for_a_payment_purged_meanwhile_changes_nothing_and_tells_no_one(deps, audit):
    pending(deps)
    settle_provider_result(deps, result())
    purging = replace(deps, ledger=PurgedWhileSettling(deps.ledger._sessions))
    late = settle_provider_result(purging, result(event_id="EV-2"))
    assert (late.payment, late.changed, late.mismatch) == (None, False, ())
    assert [kind for kind, *_ in outbox(deps)] == ["payment_receipt"] and audit.events == []
    assert deps.ledger is not None and deps.ledger.by_provider_id("PAY-0001") is None


def test_a_second_opinion_on_a_final_payment_is_kept_not_applied(deps, audit):
    pending(deps)
    settle_provider_result(deps, result())
    other = settle_provider_result(deps, result(status="failed", event_id="EV-2"))
    assert (other.changed, other.mismatch, present(other.payment).status) == (False, ("status",), "succeeded")
    assert [e.detail for e in audit.events] == ["disagrees on status"]
    assert [k for k, *_ in outbox(deps)] == ["payment_receipt"]


# ---------------------------------------------------------------- asking when no callback comes
def due(deps: Deps, provider_id: str, minutes: int = 10) -> None:
    """Makes ``provider_id`` pending since ``minutes`` before NOW."""
    with deps.ledger._sessions() as db:   # type: ignore[union-attr]
        db.execute(update(PaymentIntentRow).where(PaymentIntentRow.provider_payment_id == provider_id)
                   .values(pending_since=NOW - timedelta(minutes=minutes)))
        db.commit()


def intent(payment_id: str = "PAY-0001", status: str = "succeeded", **change: Any) -> PaymentIntent:
    fields: dict[str, Any] = {"amount": Decimal(12500), "currency": "XOF", "purpose": "bill",
                              "account_number": ACCOUNT, "msisdn": NUMBER, "reference": "MM7",
                              "token": None, "failure_reason": None}
    return PaymentIntent(payment_id, status, **{**fields, **change})   # type: ignore[arg-type]


def tally(**done: int) -> dict[str, int]:
    """What a reconciliation pass did: every count, 0 unless given."""
    return {**dict.fromkeys(("settled", "still_pending", "given_up", "mismatched", "recorded", "never_started",
                             "unresolved", "unanswered"), 0),
            **done}


def test_a_payment_without_a_callback_is_settled_by_asking_the_provider(deps, provider):
    pending(deps)
    due(deps, "PAY-0001", minutes=4)
    provider.answers["PAY-0001"] = intent()
    assert reconcile_pending(deps, NOW, 300) == tally()
    due(deps, "PAY-0001", minutes=5)
    assert reconcile_pending(deps, NOW, 300) == tally(settled=1)
    paid = deps.ledger.by_provider_id("PAY-0001")
    assert (paid.status, paid.reference, paid.status_checks) == ("succeeded", "MM7", 0)
    [(kind, _, _, _, dedupe)] = outbox(deps)
    assert (kind, dedupe) == ("payment_receipt", "payment:PAY-0001:succeeded")


@pytest.mark.parametrize("answer", [intent(status="pending"), BackendUnavailable("down"), NotFound("PAY-0001")])
def test_a_payment_still_undecided_is_asked_five_times_then_the_customer_is_told(deps, provider, answer):
    pending(deps)
    provider.answers["PAY-0001"] = answer
    at = NOW
    for check in range(1, 5):
        due(deps, "PAY-0001")
        assert reconcile_pending(deps, at, 300)["still_pending"] == 1
        assert deps.ledger.by_provider_id("PAY-0001").status_checks == check
        # Asked again only once the wait has passed since the last question.
        assert reconcile_pending(deps, at + timedelta(seconds=299), 300)["still_pending"] == 0
        at += timedelta(seconds=300)
    assert outbox(deps) == []
    assert reconcile_pending(deps, at, 300) == tally(given_up=1)
    assert deps.ledger.by_provider_id("PAY-0001").status == "unconfirmed"
    [(kind, msisdn, _, payload, dedupe)] = outbox(deps)
    assert (kind, msisdn, payload["payment_id"], dedupe) == ("payment_unconfirmed", NUMBER, "PAY-0001",
                                                              "payment:PAY-0001:unconfirmed")
    assert reconcile_pending(deps, at + timedelta(hours=1), 300)["given_up"] == 0   # told once


def test_fewer_questions_can_be_configured(deps, provider):
    pending(deps)
    due(deps, "PAY-0001")
    provider.answers["PAY-0001"] = intent(status="pending")
    assert reconcile_pending(deps, NOW, 300, max_checks=1)["given_up"] == 1


def test_a_status_answer_that_disagrees_is_counted_and_kept(deps, provider, audit):
    pending(deps)
    due(deps, "PAY-0001")
    provider.answers["PAY-0001"] = intent(amount=Decimal(1))
    assert reconcile_pending(deps, NOW, 300) == tally(still_pending=1, mismatched=1)
    [event] = audit.events
    assert event.channel == "payment_status"
    assert deps.ledger.mismatches("PAY-0001")[0]["event_id"] == "status:PAY-0001:succeeded"


def test_a_prepaid_token_bought_is_listed_as_the_provider_wrote_it_for_the_screen_to_group(deps, provider):
    started = run(deps, "payments.initiate", **confirmed("5000", "prepaid", account_number="3000001"))
    pid = started.data["pay_reference"]
    settle_provider_result(deps, result(pid, amount=Decimal(5000), account_number="3000001",
                                        token="1234-5678-9012-3456-7890"))
    [item] = run(deps, "payments.recent", account_number="3000001").data["pay_list"]
    # One rule groups a token, {x:token} on the screen (tests/engine/test_formatting.py): the step keeps it raw.
    assert (item["status"], item["token"], item["purpose"]) == ("succeeded", "1234-5678-9012-3456-7890", "prepaid")
    assert (item["amount"], item["reference"], item["payment_id"]) == ("5000", "MM1", pid)


def test_one_pass_settles_every_due_payment_with_the_providers_token_and_reason(deps, provider):
    pending(deps, "PAY-0001", purpose="prepaid")
    pending(deps, "PAY-0002")
    pending(deps, "PAY-0003")
    pending(deps, "PAY-0004")
    for pid in ("PAY-0001", "PAY-0002", "PAY-0003", "PAY-0004"):
        due(deps, pid)
    provider.answers = {"PAY-0001": intent("PAY-0001", purpose="prepaid", token="12345678901234567890"),
                        "PAY-0002": intent("PAY-0002", status="failed", reference=None,
                                           failure_reason="insufficient_funds"),
                        "PAY-0003": intent("PAY-0003", amount=Decimal(1)),
                        "PAY-0004": intent("PAY-0004", amount=Decimal(1))}
    assert reconcile_pending(deps, NOW, 300) == tally(settled=2, still_pending=2, mismatched=2)
    assert deps.ledger is not None
    bought, refused = deps.ledger.by_provider_id("PAY-0001"), deps.ledger.by_provider_id("PAY-0002")
    assert (bought.status, bought.token) == ("succeeded", "12345678901234567890")
    assert (refused.status, refused.failure_reason) == ("failed", "insufficient_funds")
    provider.answers = {"PAY-0003": intent("PAY-0003", status="pending"), "PAY-0004": intent("PAY-0004", "pending")}
    counts = reconcile_pending(deps, NOW + timedelta(days=1), 300, max_checks=2)
    assert counts == tally(given_up=2)


# ---------------------------------------------------------------- started, but its id not recorded
class LedgerFailingOnce:
    """Our ledger, whose write of the provider's id fails once (a lock or statement timeout, the database
    gone), as ``tests/channels/test_ussd_payment_unrecorded.py`` does for real."""

    def __init__(self, ledger: Any) -> None:
        self._ledger, self.failed = ledger, False

    def mark_pending(self, idempotency_key: str, provider_payment_id: str) -> Any:
        if not self.failed:
            self.failed = True
            raise OperationalError("UPDATE payment_intents ...", {}, Exception("canceling statement due to lock "
                                                                                "timeout"))
        return self._ledger.mark_pending(idempotency_key, provider_payment_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def started_unrecorded(deps: Deps, **data: Any) -> tuple[Deps, StepResult]:
    failing = replace(deps, ledger=LedgerFailingOnce(deps.ledger))
    return failing, run(failing, "payments.initiate", **confirmed(**data))


def test_a_payment_started_whose_id_cannot_be_recorded_is_told_started_and_audited(deps, provider, audit):
    _, started = started_unrecorded(deps)
    [asked] = provider.started.values()
    assert (started.outcome, started.data["pay_reference"]) == ("started", asked["id"])
    [row] = ledger_rows(deps)
    assert (row.status, row.provider_payment_id) == ("created", None)
    [event] = audit.events
    assert (event.kind, event.channel, event.subject, event.account, event.detail, event.extra) == (
        "payment_unrecorded", "ussd", NUMBER, ACCOUNT, "provider started it; ledger write failed",
        {"payment_id": asked["id"]})


def test_its_callback_finds_it_by_our_key_and_records_the_providers_id(deps, provider):
    _, started = started_unrecorded(deps)
    pid, key = started.data["pay_reference"], started.data["pay_key"]
    assert settle_provider_result(deps, result(pid)).payment is None        # without our key: unknown (404)
    settled = settle_provider_result(deps, result(pid, idempotency_key=key))
    assert settled.changed and settled.payment is not None
    assert (settled.payment.status, settled.payment.provider_payment_id) == ("succeeded", pid)
    assert [kind for kind, *_ in outbox(deps)] == ["payment_receipt"]
    again = settle_provider_result(deps, result(pid, idempotency_key=key))   # the provider's retry
    assert not again.changed and len(outbox(deps)) == 1


def test_a_callback_by_our_key_that_disagrees_is_kept_for_an_agent_and_records_nothing(deps, provider, audit):
    _, started = started_unrecorded(deps)
    pid, key = started.data["pay_reference"], started.data["pay_key"]
    refused = settle_provider_result(deps, result(pid, idempotency_key=key, amount=Decimal(1)))
    assert refused.mismatch == ("amount",)
    [row] = ledger_rows(deps)
    assert (row.status, row.provider_payment_id) == ("created", None) and outbox(deps) == []
    assert [e.kind for e in audit.events] == ["payment_unrecorded", "callback_mismatch"]


def test_the_worker_asks_the_provider_by_our_key_and_records_then_settles_it(deps, provider):
    _, started = started_unrecorded(deps)
    pid = started.data["pay_reference"]
    wall = datetime.now(UTC)       # the row's creation is stamped by the database's clock
    assert reconcile_pending(deps, wall + timedelta(seconds=200), 300) == tally()         # not due yet
    assert reconcile_pending(deps, wall + timedelta(seconds=301), 300) == tally(recorded=1)
    recorded = deps.ledger.by_provider_id(pid)
    assert recorded is not None and (recorded.status, recorded.status_checks) == ("pending", 0)
    provider.answers[pid] = intent(pid)
    assert reconcile_pending(deps, wall + timedelta(seconds=700), 300) == tally(settled=1)
    assert deps.ledger.by_provider_id(pid).status == "succeeded"
    assert [kind for kind, *_ in outbox(deps)] == ["payment_receipt"]


def test_the_worker_settles_at_once_a_payment_found_by_key_already_decided(deps, provider):
    _, started = started_unrecorded(deps)
    pid = started.data["pay_reference"]
    provider.answers[pid] = intent(pid, status="failed", reference=None, failure_reason="insufficient_funds")
    wall = datetime.now(UTC)
    assert reconcile_pending(deps, wall + timedelta(seconds=301), 300) == tally(recorded=1, settled=1)
    failed = deps.ledger.by_provider_id(pid)
    assert failed is not None and (failed.status, failed.failure_reason) == ("failed", "insufficient_funds")
    assert [kind for kind, *_ in outbox(deps)] == ["payment_failed"]


def test_a_payment_the_provider_took_though_its_answer_was_lost_is_found_by_the_worker(deps, provider):
    provider.lose_answer = True        # started at the provider; its answer never reached us (a read timeout)
    assert run(deps, "payments.initiate", **confirmed()).outcome == "unsure"
    [asked] = provider.started.values()
    provider.answers[asked["id"]] = intent(asked["id"])
    assert reconcile_pending(deps, datetime.now(UTC) + timedelta(seconds=301), 300) == tally(recorded=1, settled=1)
    assert deps.ledger.by_provider_id(asked["id"]).status == "succeeded"
    assert [kind for kind, *_ in outbox(deps)] == ["payment_receipt"]


def test_a_payment_the_provider_says_it_never_got_stops_counting_as_on_its_way(deps, provider, billing):
    provider.fail = BackendUnavailable("ReadTimeoutError")     # it may have got it: on its way
    unsure = run(deps, "payments.initiate", **confirmed("5000"))
    assert unsure.outcome == "unsure"
    known = {"pay_key": unsure.data["pay_key"]}
    assert run(deps, "payments.start", account_number=ACCOUNT, **known).outcome == "bill_awaiting"
    wall = datetime.now(UTC)
    assert reconcile_pending(deps, wall + timedelta(seconds=301), 300) == tally(never_started=1)
    [row] = ledger_rows(deps)
    assert (row.status, row.provider_payment_id, row.status_checks) == ("not_started", None, 1)
    assert run(deps, "payments.start", account_number=ACCOUNT, **known).outcome == "bill"   # all of it again
    assert outbox(deps) == []                                   # nothing was charged: nothing to tell


def test_a_payment_not_started_is_still_asked_about_with_waits_doubling_then_left(deps, provider):
    provider.fail = NotSent("connection refused")
    assert run(deps, "payments.initiate", **confirmed()).outcome == "backend_down"
    wall = datetime.now(UTC)
    asked_at = [wall + timedelta(seconds=s) for s in (301, 301 + 300, 301 + 900, 301 + 2100)]
    for n, at in enumerate(asked_at, start=1):
        assert reconcile_pending(deps, at - timedelta(seconds=2), 300) == tally()          # not due yet
        assert reconcile_pending(deps, at, 300) == tally()
        assert ledger_rows(deps)[0].status_checks == n
    for n in range(5, 30):                                      # then once an hour at most, for a day
        assert reconcile_pending(deps, asked_at[-1] + timedelta(seconds=2400 + 3600 * (n - 5)), 300) == tally()
    [row] = ledger_rows(deps)
    assert (row.status, row.status_checks) == ("not_started", 27)
    assert reconcile_pending(deps, wall + timedelta(days=2), 300) == tally()               # never asked again
    assert ledger_rows(deps)[0].status_checks == 27 and outbox(deps) == []


def test_a_payment_the_provider_cannot_be_asked_about_for_a_day_is_left_to_an_agent_and_audited(deps, provider,
                                                                                               audit, billing):
    _, started = started_unrecorded(deps, pay_amount="5000")
    provider.unreachable = True
    wall = datetime.now(UTC)
    at = wall + timedelta(seconds=301)
    while at < wall + timedelta(days=1):
        assert reconcile_pending(deps, at, 300, give_up_seconds=86_400) == tally()
        at += timedelta(seconds=3600)
    [row] = ledger_rows(deps)
    assert row.status == "created" and 20 < row.status_checks < 30       # asked about once an hour at most
    # The first question past a day gives it up.
    assert reconcile_pending(deps, at, 300, give_up_seconds=86_400) == tally(unresolved=1)
    [row] = ledger_rows(deps)
    assert (row.status, row.provider_payment_id) == ("unresolved", None)
    [_, event] = audit.events
    assert (event.kind, event.subject, event.account, event.extra) == (
        "payment_unresolved", NUMBER, ACCOUNT, {"amount": "5000", "purpose": "bill"})
    # Still on its way (the wallet may be debited); never asked about, nor given up, again.
    again = run(deps, "payments.start", account_number=ACCOUNT, pay_key=started.data["pay_key"])
    assert (again.outcome, again.data["pay_awaiting"]) == ("bill_awaiting", "5000")
    assert reconcile_pending(deps, wall + timedelta(days=3), 300) == tally()
    # Its history says it is not confirmed, not that nothing was charged.
    [item] = run(deps, "payments.recent", account_number=ACCOUNT).data["pay_list"]
    assert item["status"] == "unconfirmed"
    # The provider's word by our key still records it: nothing is lost.
    provider.unreachable = False
    pid = started.data["pay_reference"]
    settled = settle_provider_result(deps, result(pid, amount=Decimal(5000), idempotency_key=started.data["pay_key"]))
    assert settled.changed and present(settled.payment).status == "succeeded"


# ---------------------------------------------------------------- an agent's word on an unresolved payment
KEY = "pay-" + "a" * 40
PORTAL = "MM7KQ2ZP9XW4"      # the provider's reference, read on its portal or the customer's wallet SMS


def unresolved(deps: Deps, purpose: str = "bill") -> LocalPayment:
    """A payment of 12 500 whose provider id was never recorded, given up by the worker: an agent decides."""
    assert deps.ledger is not None
    deps.ledger.create(idempotency_key=KEY, msisdn=NUMBER, account_number=ACCOUNT, purpose=purpose,
                       amount=Decimal(12500), language="en", wallet="wave")
    return present(deps.ledger.give_up_unrecorded(KEY))


def test_asking_the_provider_by_our_key_says_what_it_did_to_the_payment(deps, provider):
    """An agent's "ask the provider now" on a payment left to them: the console shows the outcome and the payment."""
    unresolved(deps)
    provider.unreachable = True
    assert ask_by_key(deps, KEY) == KeyAnswer("unreachable")
    provider.unreachable = False
    assert ask_by_key(deps, KEY) == KeyAnswer("unknown")                 # it never got the payment
    provider.started[KEY] = {"id": "PAY-0007", "amount": Decimal(12500), "purpose": "bill",
                             "account_number": ACCOUNT, "msisdn": NUMBER}
    recorded = ask_by_key(deps, KEY)                                      # started, not final: its id recorded
    assert recorded.outcome == "recorded"
    assert (present(recorded.payment).provider_payment_id, present(recorded.payment).status) == ("PAY-0007", "pending")
    provider.answers["PAY-0007"] = intent("PAY-0007", reference="MM7")
    settled = ask_by_key(deps, KEY)                                       # final: applied as its callback would be
    assert settled.outcome == "settled"
    assert (present(settled.payment).status, present(settled.payment).reference) == ("succeeded", "MM7")
    assert [kind for kind, *_ in outbox(deps)] == ["payment_receipt"]


def test_asking_by_key_keeps_the_token_of_a_purchase_and_a_disagreeing_answer_for_an_agent(deps, provider, audit):
    unresolved(deps, purpose="prepaid")
    provider.started[KEY] = {"id": "PAY-0008", "amount": Decimal(12500), "purpose": "prepaid",
                             "account_number": ACCOUNT, "msisdn": NUMBER}
    provider.answers["PAY-0008"] = intent("PAY-0008", purpose="prepaid", amount=Decimal(500))
    mismatch = ask_by_key(deps, KEY)
    assert (mismatch.outcome, present(mismatch.payment).status) == ("mismatch", "unresolved")
    # The security trail says the disagreeing word came from our question (not a callback, nor an agent).
    assert [(e.kind, e.channel, e.detail) for e in audit.events] == [
        ("callback_mismatch", "payment_status", "disagrees on amount")]
    provider.answers["PAY-0008"] = intent("PAY-0008", purpose="prepaid", token="12345678901234567890")
    settled = ask_by_key(deps, KEY)
    assert settled.outcome == "settled" and present(settled.payment).token == "12345678901234567890"


def with_billing(deps: Deps) -> tuple[str | None, str | None]:
    """Where the payment stands with billing, as the agents' console lists it: ``due`` (the worker posts it),
    ``posted``, ``refused`` (for a supervisor), and what billing said."""
    with deps.ledger._sessions() as db:   # type: ignore[union-attr]
        row = db.scalars(select(PaymentIntentRow).where(PaymentIntentRow.idempotency_key == KEY)).one()
        return row.billing_post, row.billing_said


def test_an_agents_paid_settles_it_under_the_providers_reference_and_billing_is_credited_once(deps, billing,
                                                                                             audit):
    payment = unresolved(deps)
    settled = settle_by_agent(deps, payment, paid=True, reference=PORTAL)
    paid = present(settled.payment)
    assert (settled.changed, settled.mismatch, settled.kept) == (True, (), False)
    assert (paid.status, paid.provider_payment_id, paid.reference, paid.failure_reason) == (
        "succeeded", PORTAL, PORTAL, None)
    assert outbox(deps) == [("payment_receipt", NUMBER, "en", {
        "payment_id": PORTAL, "reference": PORTAL, "amount": "12500", "account_number": ACCOUNT, "purpose": "bill",
        "token": None, "failure_reason": None}, f"payment:{PORTAL}:succeeded")]
    assert billing.posts == [{"account_number": ACCOUNT, "payment_id": PORTAL, "amount": Decimal(12500),
                              "currency": "XOF", "reference": PORTAL, "idempotency_key": f"post-{KEY}",
                              "payment_key": KEY}]
    assert with_billing(deps) == ("posted", None)
    [event] = audit.events
    assert (event.kind, event.channel, event.subject, event.account, event.detail, event.extra) == (
        "payment_posted_to_billing", "agent", NUMBER, ACCOUNT, "an agent's settlement recorded by billing",
        {"amount": "12500", "payment_id": PORTAL})
    # The form sent twice, then the worker's pass: nothing settled, told or credited twice.
    again = settle_by_agent(deps, payment, paid=True, reference=PORTAL)
    assert (again.changed, present(again.payment).status) == (False, "succeeded")
    assert post_owed_to_billing(deps) == 0
    assert (len(billing.posts), len(outbox(deps)), len(audit.events)) == (1, 1, 1)


def test_an_agents_not_paid_fails_it_as_not_received_under_an_id_of_our_own_and_credits_nothing(deps, billing,
                                                                                                audit):
    # A reference typed before the supervisor chose "not paid" is not the payment's.
    settled = settle_by_agent(deps, unresolved(deps), paid=False, reference=PORTAL)
    failed = present(settled.payment)
    assert settled.changed
    assert (failed.status, failed.provider_payment_id, failed.reference, failed.failure_reason) == (
        "failed", f"none-{KEY}", None, "not_received")
    assert outbox(deps) == [("payment_failed", NUMBER, "en", {
        "payment_id": f"none-{KEY}", "reference": None, "amount": "12500", "account_number": ACCOUNT,
        "purpose": "bill", "token": None, "failure_reason": "not_received"}, f"payment:none-{KEY}:failed")]
    assert (billing.posts, with_billing(deps), audit.events, post_owed_to_billing(deps)) == ([], (None, None), [], 0)
    # No longer on its way: the customer may pay the whole balance again.
    assert run(deps, "payments.start", account_number=ACCOUNT).outcome == "bill"


def test_the_providers_own_success_is_never_owed_to_billing(deps, billing):
    # The provider's approval reaches billing on its side; posting it again would credit the account twice.
    pending(deps)
    assert settle_provider_result(deps, result()).changed
    assert deps.ledger is not None and deps.ledger.to_post_to_billing() == []
    assert (post_owed_to_billing(deps), billing.posts) == (0, [])


def test_billing_down_when_an_agent_says_paid_keeps_it_owed_and_the_workers_pass_posts_it_once(deps, billing,
                                                                                               audit):
    billing.refuse = BackendUnavailable("billing down")
    settled = settle_by_agent(deps, unresolved(deps), paid=True, reference=PORTAL)
    assert settled.changed and present(settled.payment).status == "succeeded"
    assert deps.ledger is not None and [p.idempotency_key for p in deps.ledger.to_post_to_billing()] == [KEY]
    assert (with_billing(deps), post_owed_to_billing(deps), audit.events) == (("due", None), 0, [])   # still down
    billing.refuse = None
    assert post_owed_to_billing(deps) == 1                      # the worker's next pass
    assert [p["payment_id"] for p in billing.posts] == [PORTAL] and with_billing(deps) == ("posted", None)
    [event] = audit.events
    assert (event.kind, event.channel, event.subject) == ("payment_posted_to_billing", "worker", NUMBER)
    assert (post_owed_to_billing(deps), len(billing.posts)) == (0, 1)


@pytest.mark.parametrize(("refusal", "said"), [
    (Conflict("payment MM7KQ2ZP9XW4 was received with another account or amount"),
     "Conflict: payment MM7KQ2ZP9XW4 was received with another account or amount"),
    (Rejected("account 1000001 is closed", code="account_closed"), "account_closed: account 1***001 is closed"),
    (Rejected("amount above the account's limit"), "Rejected: amount above the account's limit"),
    (Rejected(code="account_closed"), "account_closed"),
    (NotFound(""), "NotFound"),
    (Rejected("x" * 300), "Rejected: " + "x" * 190),
])
def test_a_post_billing_refuses_for_good_is_kept_for_a_supervisor_with_what_billing_said(deps, billing, audit,
                                                                                         refusal, said):
    billing.refuse = refusal
    assert settle_by_agent(deps, unresolved(deps), paid=True, reference=PORTAL).changed
    assert with_billing(deps) == ("refused", said)
    [event] = audit.events
    assert (event.kind, event.channel, event.subject, event.account, event.extra) == (
        "payment_billing_refused", "agent", NUMBER, ACCOUNT, {"amount": "12500", "payment_id": PORTAL})
    assert event.detail == f"billing refused the agent's settlement: {said}"[:200]
    # The worker does not post it again: a supervisor decides (the console's "Post to billing again").
    billing.refuse = None
    assert deps.ledger is not None and deps.ledger.to_post_to_billing() == []
    assert (post_owed_to_billing(deps), billing.posts) == (0, [])


def test_posting_to_billing_says_what_billing_did_as_the_supervisors_notice_tells_it(deps, billing):
    billing.refuse = BackendUnavailable("billing down")
    settle_by_agent(deps, unresolved(deps), paid=True, reference=PORTAL)
    assert deps.ledger is not None
    paid = present(deps.ledger.get(KEY))
    assert post_to_billing(deps, paid, "agent") == "unavailable"          # kept due: the worker posts it
    billing.refuse = Conflict("payment MM7KQ2ZP9XW4 was received with another account or amount")
    assert post_to_billing(deps, paid, "agent") == "refused"
    assert deps.ledger.move_billing(KEY, "refused", "due")                # a supervisor's "Post to billing again"
    billing.refuse = None
    assert post_to_billing(deps, paid, "agent") == "posted" and len(billing.posts) == 1


@pytest.mark.parametrize(("reference", "posted_as"), [
    ("W" * 40, "W" * 40),                                        # billing takes ids of up to 40 characters
    ("W" * 41, "REF-588f1506e13244f170a7bc91abf485a8"),
])
def test_a_reference_longer_than_billings_ids_is_posted_under_a_stable_digest(deps, billing, reference, posted_as):
    settle_by_agent(deps, unresolved(deps), paid=True, reference=reference)
    [post] = billing.posts
    assert (post["payment_id"], post["reference"], len(post["payment_id"]) <= 40) == (posted_as, reference, True)


def test_payments_unresolved_for_a_day_to_the_second_are_each_left_to_an_agent_in_one_pass(deps, provider, audit):
    provider.unreachable = True
    assert deps.ledger is not None
    for key, account in (("pay-1", ACCOUNT), ("pay-2", "1000002")):
        deps.ledger.create(idempotency_key=key, msisdn=NUMBER, account_number=account, purpose="bill",
                           amount=Decimal(5000), wallet="wave")
    with deps.ledger._sessions() as db:
        db.execute(update(PaymentIntentRow).values(created_at=NOW - timedelta(days=1)))
        db.commit()
    assert reconcile_pending(deps, NOW, 300, give_up_seconds=86_400) == tally(unresolved=2)
    assert [p.status for p in ledger_rows(deps)] == ["unresolved", "unresolved"]
    # What the agents read in the audit trail: who gave up, and why the money may be gone.
    assert [(e.kind, e.channel, e.account, e.detail, e.extra) for e in audit.events] == [
        ("payment_unresolved", "worker", account, "provider never answered by our key; may be debited",
         {"amount": "5000", "purpose": "bill"}) for account in (ACCOUNT, "1000002")]


# ---------------------------------------------------------------- the provider's word after an agent's
def test_a_late_approval_after_an_agents_not_paid_is_kept_and_the_customer_told_it_is_being_checked(deps, audit):
    settle_by_agent(deps, unresolved(deps), paid=False, reference=None)
    late = result("PAY-LATE", event_id="EV-LATE", reference="MM9", idempotency_key=KEY)

    kept = settle_provider_result(deps, late)

    assert (kept.changed, kept.mismatch, kept.kept) == (False, ("payment_id", "status"), True)
    assert present(kept.payment).status == "failed"                      # never applied
    assert deps.ledger is not None
    [row] = deps.ledger.mismatches(f"none-{KEY}")                        # listed with the payment, for an agent
    assert (row["event_id"], row["source"], row["reasons"], row["status"]) == (
        "EV-LATE", "callback", "payment_id,status", "open")
    assert json.loads(row["received"])["payment_id"] == "PAY-LATE"
    [event] = audit.events
    assert (event.kind, event.channel, event.subject, event.account, event.detail, event.extra) == (
        "callback_after_settlement", "payment_callback", NUMBER, ACCOUNT, "provider says succeeded after failed; kept",
        {"amount": "12500", "provider_payment_id": "PAY-LATE"})
    told = [entry for entry in outbox(deps) if entry[0] == "payment_under_review"]
    assert told == [("payment_under_review", NUMBER, "en", {"amount": "12500", "account_number": ACCOUNT,
                                                            "reference": "MM9", "purpose": "bill"},
                     "payment:PAY-LATE:under_review")]
    # The provider sends it again: nothing kept or told twice.
    assert settle_provider_result(deps, late).kept
    assert len(deps.ledger.mismatches(f"none-{KEY}")) == 1 and len(outbox(deps)) == 2


def test_a_late_refusal_after_an_agents_paid_is_kept_with_what_disagrees_and_tells_no_one_more(deps, audit):
    settle_by_agent(deps, unresolved(deps), paid=True, reference=PORTAL)
    late = result("PAY-LATE", status="failed", event_id="EV-LATE", amount=Decimal(500), idempotency_key=KEY)
    kept = settle_provider_result(deps, late)
    assert (kept.changed, kept.mismatch, kept.kept) == (False, ("payment_id", "status", "amount"), True)
    assert deps.ledger is not None and present(deps.ledger.get(KEY)).status == "succeeded"
    assert [r["reasons"] for r in deps.ledger.mismatches(PORTAL)] == ["payment_id,status,amount"]
    assert [e.detail for e in audit.events if e.kind == "callback_after_settlement"] == [
        "provider says failed after succeeded; kept"]
    assert [kind for kind, *_ in outbox(deps)] == ["payment_receipt"]    # the receipt only


@pytest.mark.parametrize("word", ["failed", "pending"])
def test_a_late_word_that_agrees_or_is_not_final_is_not_kept(deps, audit, word):
    settle_by_agent(deps, unresolved(deps), paid=False, reference=None)
    late = settle_provider_result(deps, result("PAY-LATE", status=word, event_id="EV-LATE", idempotency_key=KEY))
    if word == "failed":        # it agrees: the payment as it is, nothing to keep
        assert (present(late.payment).status, late.changed, late.mismatch, late.kept) == ("failed", False, (), False)
    else:                       # not the provider's last word: nothing to apply (the callback's 404)
        assert (late.payment, late.changed, late.mismatch, late.kept) == (None, False, (), False)
    assert deps.ledger is not None and deps.ledger.mismatches(f"none-{KEY}") == []
    assert audit.events == [] and [kind for kind, *_ in outbox(deps)] == ["payment_failed"]


# ---------------------------------------------------------------- a database in another zone
@pytest.fixture
def deps_an_hour_east(postgres_url: str, billing: Billing, provider: Provider, audit: Audit) -> Deps:
    """The same, on PostgreSQL whose sessions speak West Africa Time (a server configured in local time): the
    ledger's stamps come back an hour east of UTC, the same instants."""
    url = f"{postgres_url}%20-cTimeZone%3DAfrica/Lagos"
    migrate(url)
    sessions = make_sessions(url)
    return Deps(billing=billing, links=None, preferences=None, throttle=MemoryThrottle(), payments=provider,  # type: ignore[arg-type]
                ledger=SqlPaymentLedger(sessions), outbox=SqlOutbox(sessions, OutboxSeal([Fernet.generate_key()])),
                security=audit, settings=DialogSettings(payment_callback_url=CALLBACK))


def test_a_payments_age_and_history_are_the_same_instants_from_a_database_an_hour_east(deps_an_hour_east, provider):
    deps, ledger = deps_an_hour_east, deps_an_hour_east.ledger
    assert ledger is not None
    ledger.create(idempotency_key=KEY, msisdn=NUMBER, account_number=ACCOUNT, purpose="bill", amount=Decimal(5000),
                  wallet="wave")
    created = present(present(ledger.get(KEY)).created_at)
    assert created.utcoffset() == timedelta(hours=1)
    [item] = run(deps, "payments.recent", account_number=ACCOUNT).data["pay_list"]
    assert datetime.fromisoformat(item["created_at"]) == created
    # Given up a day after it was created, to the second (not an hour later).
    provider.unreachable = True
    assert reconcile_pending(deps, (created + timedelta(days=1)).astimezone(UTC), 300,
                             give_up_seconds=86_400) == tally(unresolved=1)


def test_the_providers_approval_by_our_key_of_a_payment_it_had_refused_is_kept_and_the_customer_told(deps, provider,
                                                                                                    audit):
    provider.fail = Rejected("insufficient funds", code="insufficient_funds")
    refused = run(deps, "payments.initiate", **confirmed())
    key = refused.data["pay_key"]
    kept = settle_provider_result(deps, result("PAY-LATE", event_id="EV-LATE", idempotency_key=key))
    assert (kept.changed, kept.mismatch, kept.kept) == (False, ("payment_id", "status"), True)
    assert deps.ledger is not None and present(deps.ledger.get(key)).status == "failed"
    assert [r["reasons"] for r in deps.ledger.mismatches(key)] == ["payment_id,status"]
    assert [e.kind for e in audit.events] == ["callback_after_settlement"]
    assert [kind for kind, *_ in outbox(deps)] == ["payment_under_review"]
