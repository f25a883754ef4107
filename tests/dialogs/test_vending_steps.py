"""A prepaid purchase settled by hand, its token asked of the vending system (``dialogs/vending.py``), one step at
a time against the real ledger and outbox (SQLite) and an in-memory vending system that keeps its contract (one
token per payment or key, ever).

Awa (prepaid account 3000001, meter MTR-3000001) bought 2 000 FCFA of credit; the provider's id never reached
our ledger and a supervisor settled it "paid" on the provider's receipt. Quick enough for ``make mutation`` to run
for every mutant of ``dialogs/vending.py`` and of ``settle_by_agent``; the agents' console tests
(``tests/web_fallback/agents/test_console_token_owed.py``) walk the same paths against the back office.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from app.storage import SqlOutbox, SqlPaymentLedger, make_sessions
from app.storage.models import PaymentIntentRow
from app.storage.outbox_seal import OutboxSeal
from app.storage.throttle import MemoryThrottle
from dialogs.backends import Account, BackendUnavailable, NotFound, Rejected, Vend
from dialogs.payments import settle_by_agent, settle_provider_result
from dialogs.registry import Deps, DialogSettings
from dialogs.stores import LocalPayment, ProviderResult
from dialogs.vending import vend_owed_tokens, vend_token, vend_wait
from tests.dialogs.test_payment_steps import Audit

AWA = "+221770000003"
ACCOUNT = "3000001"
METER = "MTR-3000001"
KEY = "pay-" + "a" * 40
RECEIPT = "MM7KQ2ZP9XW4"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
TOKEN = "48213907561284730195"


class Billing:
    """Billing's accounts: Awa's prepaid one on its meter (any other is not found); ``down`` unreachable."""

    def __init__(self) -> None:
        self.down = False

    def account(self, account_number: str) -> Account:
        if self.down:
            raise BackendUnavailable("billing down")
        if account_number != ACCOUNT:
            raise NotFound(account_number)
        return Account(ACCOUNT, "Awa Diop", "residential", "prepaid", "DKR-01", METER)


class Vending:
    """The vending system: one token per key and per payment, ever (its contract); ``fail`` raises instead."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []
        self.tokens: dict[str, Vend] = {}
        self.fail: Exception | None = None

    def vend(self, meter_id: str, *, payment_id: str, amount: Decimal, currency: str, idempotency_key: str,
             payment_key: str | None = None) -> Vend:
        self.asked.append({"meter_id": meter_id, "payment_id": payment_id, "amount": amount, "currency": currency,
                           "idempotency_key": idempotency_key, "payment_key": payment_key})
        if self.fail is not None:
            raise self.fail
        made = Vend(f"VND-{len(self.tokens) + 1}", meter_id, payment_id, amount, amount / 100,
                    f"{len(self.tokens) + 1:020d}" if self.tokens else TOKEN)
        return self.tokens.setdefault(payment_key or payment_id, made)


@pytest.fixture
def vending() -> Vending:
    return Vending()


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def deps(engine_db: str, vending: Vending, audit: Audit) -> Deps:
    sessions = make_sessions(engine_db)
    return Deps(billing=Billing(), links=None, preferences=None, throttle=MemoryThrottle(),  # type: ignore[arg-type]
                metering=vending, ledger=SqlPaymentLedger(sessions),  # type: ignore[arg-type]
                outbox=SqlOutbox(sessions, OutboxSeal([Fernet.generate_key()])), security=audit,
                settings=DialogSettings())


def settled_by_hand(deps: Deps, reference: str = RECEIPT) -> LocalPayment:
    """Awa's purchase, given up unrecorded, then settled "paid" by a supervisor on the provider's receipt."""
    assert deps.ledger is not None
    deps.ledger.create(idempotency_key=KEY, msisdn=AWA, account_number=ACCOUNT, purpose="prepaid",
                       amount=Decimal(2000), language="en", wallet="wave")
    deps.ledger.give_up_unrecorded(KEY)
    settled = settle_by_agent(deps, deps.ledger.get(KEY), paid=True, reference=reference)  # type: ignore[arg-type]
    assert settled.changed and settled.payment is not None
    return settled.payment


def sms(deps: Deps) -> list[tuple[str, str, str, dict[str, Any], str]]:
    assert isinstance(deps.outbox, SqlOutbox)
    return [(e["kind"], e["msisdn"], e["language"], e["payload"], e["dedupe_key"]) for e in deps.outbox.pending()]


def ledger(deps: Deps) -> LocalPayment:
    assert deps.ledger is not None
    found = deps.ledger.get(KEY)
    assert found is not None
    return found


def test_settled_paid_by_hand_a_purchase_owes_its_token_and_nothing_is_sent_yet(deps, audit) -> None:
    owed = settled_by_hand(deps)

    assert (owed.status, owed.provider_payment_id, owed.reference, owed.token, owed.vend) == (
        "succeeded", RECEIPT, RECEIPT, None, "due")
    # No receipt without its token, and a purchase is never posted to billing (no bill to pay).
    assert sms(deps) == [] and audit.events == []


def test_the_token_is_vended_under_the_payments_own_key_kept_and_sent_with_the_receipt(deps, vending,
                                                                                        audit) -> None:
    owed = settled_by_hand(deps)

    assert vend_token(deps, owed, "agent", NOW) == "vended"

    assert vending.asked == [{"meter_id": METER, "payment_id": RECEIPT, "amount": Decimal(2000), "currency": "XOF",
                              "idempotency_key": f"vend-{KEY}", "payment_key": KEY}]
    bought = ledger(deps)
    assert (bought.token, bought.vend, bought.status) == (TOKEN, "vended", "succeeded")
    assert sms(deps) == [("payment_receipt", AWA, "en", {
        "payment_id": RECEIPT, "reference": RECEIPT, "amount": "2000", "account_number": ACCOUNT,
        "purpose": "prepaid", "token": TOKEN, "failure_reason": None}, f"payment:{RECEIPT}:succeeded")]
    assert [(e.kind, e.channel, e.subject, e.account, e.detail, e.extra) for e in audit.events] == [
        ("payment_token_vended", "agent", AWA, ACCOUNT, "token vended for a prepaid purchase settled by hand",
         {"amount": "2000", "payment_id": RECEIPT, "vend_id": "VND-1"})]


def test_asked_again_nothing_is_vended_twice_nor_sent_twice(deps, vending, audit) -> None:
    owed = settled_by_hand(deps)
    assert vend_token(deps, owed, "agent", NOW) == "vended"

    # The same snapshot vended again (a second supervisor who read it owed): the vending system gives the same
    # token, the ledger keeps the first; the receipt and the audit are not repeated.
    assert vend_token(deps, owed, "agent", NOW) == "already"
    # Read again: it owes nothing, the vending system is not even asked.
    assert vend_token(deps, ledger(deps), "worker", NOW) == "already"

    assert len(vending.asked) == 2 and ledger(deps).token == TOKEN
    assert [kind for kind, *_ in sms(deps)] == ["payment_receipt"]
    assert [e.kind for e in audit.events] == ["payment_token_vended"]


def vend_said(deps: Deps) -> str | None:
    """What the vending system said refusing the token, as the agents' console lists it under "tokens owed"."""
    with deps.ledger._sessions() as db:   # type: ignore[union-attr]
        return db.scalars(select(PaymentIntentRow.vend_said).where(PaymentIntentRow.idempotency_key == KEY)).one()


def test_a_purchase_still_on_its_way_owes_no_token_and_asks_nothing(deps, vending) -> None:
    assert deps.ledger is not None
    deps.ledger.create(idempotency_key=KEY, msisdn=AWA, account_number=ACCOUNT, purpose="prepaid",
                       amount=Decimal(2000))
    deps.ledger.mark_pending(KEY, "PAY-0001")

    assert vend_token(deps, ledger(deps), "worker", NOW) == "already"

    assert vending.asked == [] and (ledger(deps).vend, ledger(deps).token) == (None, None) and sms(deps) == []


def test_a_payment_that_owes_no_token_asks_nothing(deps, vending) -> None:
    assert deps.ledger is not None
    deps.ledger.create(idempotency_key=KEY, msisdn=AWA, account_number=ACCOUNT, purpose="prepaid",
                       amount=Decimal(2000))
    deps.ledger.mark_pending(KEY, "PAY-0001")
    settle_provider_result(deps, ProviderResult(
        event_id="EV-1", payment_id="PAY-0001", status="succeeded", amount=Decimal(2000), currency="XOF",
        account_number=ACCOUNT, msisdn=AWA, reference="MM1", token=TOKEN))   # the provider's own approval

    assert ledger(deps).vend is None
    assert vend_token(deps, ledger(deps), "worker", NOW) == "already"
    assert vending.asked == []


def test_without_a_vending_system_wired_the_token_stays_owed(deps) -> None:
    owed = settled_by_hand(deps)

    assert vend_token(replace(deps, metering=None), owed, "worker", NOW) == "already"

    assert (ledger(deps).vend, ledger(deps).token, sms(deps)) == ("due", None, [])


@pytest.mark.parametrize("unreachable", ["vending", "billing"])
def test_unreachable_the_token_stays_owed_awa_is_told_once_and_the_waits_double(deps, vending, audit,
                                                                               unreachable) -> None:
    owed = settled_by_hand(deps)
    if unreachable == "vending":
        vending.fail = BackendUnavailable("read timeout")
    else:
        deps.billing.down = True

    assert vend_token(deps, owed, "agent", NOW) == "unavailable"

    assert (ledger(deps).vend, ledger(deps).vend_tries, ledger(deps).token) == ("due", 1, None)
    assert sms(deps) == [("payment_token_owed", AWA, "en", {
        "payment_id": RECEIPT, "reference": RECEIPT, "amount": "2000", "account_number": ACCOUNT,
        "purpose": "prepaid", "token": None, "failure_reason": None}, f"payment:{RECEIPT}:token_owed")]
    assert audit.events == []
    # The worker waits 30 s, then asks again (still unreachable: next in 60 s), Awa not told again.
    assert vend_owed_tokens(deps, NOW + timedelta(seconds=29)) == 0 and ledger(deps).vend_tries == 1
    assert vend_owed_tokens(deps, NOW + timedelta(seconds=30)) == 0 and ledger(deps).vend_tries == 2
    assert vend_owed_tokens(deps, NOW + timedelta(seconds=89)) == 0 and ledger(deps).vend_tries == 2
    assert [kind for kind, *_ in sms(deps)] == ["payment_token_owed"]
    vending.fail = None
    deps.billing.down = False

    assert vend_owed_tokens(deps, NOW + timedelta(seconds=90)) == 1

    assert (ledger(deps).token, ledger(deps).vend) == (TOKEN, "vended")
    assert [kind for kind, *_ in sms(deps)] == ["payment_token_owed", "payment_receipt"]
    assert [(e.kind, e.channel) for e in audit.events] == [("payment_token_vended", "worker")]
    assert vend_owed_tokens(deps, NOW + timedelta(days=1)) == 0


def test_the_waits_are_the_settings_first_doubling_up_to_the_longest() -> None:
    assert [vend_wait(DialogSettings(), tries).total_seconds() for tries in (0, 1, 2, 3, 7, 8, 30)] == [
        30, 30, 60, 120, 1920, 3600, 3600]
    quick = DialogSettings(vend_first_wait_seconds=10, vend_max_wait_seconds=25)
    assert [vend_wait(quick, tries).total_seconds() for tries in (1, 2, 3, 4)] == [10, 20, 25, 25]


def test_the_worker_waits_as_the_settings_say(deps, vending) -> None:
    quick = replace(deps, settings=DialogSettings(vend_first_wait_seconds=5, vend_max_wait_seconds=8))
    vending.fail = BackendUnavailable("down")
    assert vend_token(quick, settled_by_hand(deps), "agent", NOW) == "unavailable"

    assert vend_owed_tokens(quick, NOW + timedelta(seconds=4)) == 0 and ledger(deps).vend_tries == 1
    assert vend_owed_tokens(quick, NOW + timedelta(seconds=5)) == 0 and ledger(deps).vend_tries == 2
    # Then 10 s would be the double, capped at 8.
    assert vend_owed_tokens(quick, NOW + timedelta(seconds=12)) == 0 and ledger(deps).vend_tries == 2
    assert vend_owed_tokens(quick, NOW + timedelta(seconds=13)) == 0 and ledger(deps).vend_tries == 3


@pytest.mark.parametrize(("refusal", "said"), [
    (NotFound("no prepaid meter MTR-3000001"), "NotFound: no prepaid meter MTR-3***001"),
    (Rejected("payment MM7KQ2ZP9XW4 already bought a token", code="payment_already_vended"),
     "payment_already_vended: payment MM7KQ2ZP9XW4 already bought a token"),
    (Rejected(""), "Rejected"),
])
def test_refused_for_good_the_token_is_owed_to_a_supervisor_audited_and_awa_told_once(
        deps, vending, audit, refusal, said) -> None:
    vending.fail = refusal

    assert vend_token(deps, settled_by_hand(deps), "agent", NOW) == "refused"

    refused = ledger(deps)
    assert (refused.vend, refused.token, refused.vend_tries, vend_said(deps)) == ("refused", None, 1, said)
    assert [(e.kind, e.channel, e.subject, e.account, e.detail, e.extra) for e in audit.events] == [
        ("payment_vend_refused", "agent", AWA, ACCOUNT, f"vending system refused the token: {said}",
         {"amount": "2000", "payment_id": RECEIPT})]
    assert [(kind, payload["token"]) for kind, _, _, payload, _ in sms(deps)] == [("payment_token_owed", None)]
    # Not the worker's to ask again: refused for good until a supervisor does.
    assert vend_owed_tokens(deps, NOW + timedelta(days=1)) == 0 and len(vending.asked) == 1
    vending.fail = None

    assert vend_token(deps, refused, "agent dev:fatou", NOW) == "vended"
    assert ledger(deps).token == TOKEN
    assert [e.channel for e in audit.events if e.kind == "payment_token_vended"] == ["agent dev:fatou"]
    assert [kind for kind, *_ in sms(deps)] == ["payment_token_owed", "payment_receipt"]


def test_a_long_reference_is_vended_under_its_digest(deps, vending) -> None:
    long_reference = "WAVE-" + "7" * 60
    vend_token(deps, settled_by_hand(deps, long_reference), "agent", NOW)

    [asked] = vending.asked
    assert asked["payment_id"].startswith("REF-") and len(asked["payment_id"]) == 36
    assert asked["payment_key"] == KEY


@pytest.mark.parametrize("owed", [True, False], ids=["token owed", "token vended"])
def test_the_providers_late_approval_of_a_purchase_settled_by_hand_is_kept_for_review_never_vended_again(
        deps, vending, audit, owed) -> None:
    """The supervisor typed the receipt's reference; the provider approves the same payment later under its own
    id: one payment, one token. The approval is not applied, kept for an agent under the settled payment, and
    audited; Awa, who has her receipt or was told her code follows, is not told anything more."""
    settled = settled_by_hand(deps)
    if not owed:
        assert vend_token(deps, settled, "agent", NOW) == "vended"
    before = sms(deps)
    assert deps.ledger is not None

    late = settle_provider_result(deps, ProviderResult(
        event_id="EVT-LATE", payment_id="PAY-0042", status="succeeded", amount=Decimal(2000), currency="XOF",
        account_number=ACCOUNT, msisdn=AWA, reference="MMLATE", token="99999999999999999999",
        idempotency_key=KEY, source="callback"))

    assert (late.changed, late.kept, late.mismatch) == (False, True, ("payment_id",))
    after = ledger(deps)
    assert (after.status, after.provider_payment_id, after.token, after.vend) == (
        "succeeded", RECEIPT, TOKEN if not owed else None, "due" if owed else "vended")
    [kept] = deps.ledger.mismatches(RECEIPT)
    assert (kept["event_id"], kept["reasons"], kept["status"]) == ("EVT-LATE", "payment_id", "open")
    assert '"payment_id": "PAY-0042"' in kept["received"] and "9999" not in kept["received"]
    [event] = [e for e in audit.events if e.kind == "callback_after_settlement"]
    assert (event.channel, event.subject, event.account, event.detail, event.extra) == (
        "payment_callback", AWA, ACCOUNT, "provider says succeeded after succeeded; kept",
        {"amount": "2000", "provider_payment_id": "PAY-0042"})
    assert sms(deps) == before
    # Sent again (the provider's retry): kept once.
    settle_provider_result(deps, ProviderResult(
        event_id="EVT-LATE", payment_id="PAY-0042", status="succeeded", amount=Decimal(2000), currency="XOF",
        account_number=ACCOUNT, msisdn=AWA, reference="MMLATE", idempotency_key=KEY, source="callback"))
    assert len(deps.ledger.mismatches(RECEIPT)) == 1
    # The token owed is still vended once, under the payment's key, whatever the provider said.
    assert vend_owed_tokens(deps, NOW + timedelta(days=1)) == (1 if owed else 0)
    assert len(vending.tokens) == 1 and ledger(deps).token == TOKEN
    assert [kind for kind, *_ in sms(deps)] == ["payment_receipt"]


def test_a_late_decline_after_a_hand_settled_not_paid_agrees_and_keeps_nothing(deps, audit) -> None:
    assert deps.ledger is not None
    deps.ledger.create(idempotency_key=KEY, msisdn=AWA, account_number=ACCOUNT, purpose="prepaid",
                       amount=Decimal(2000))
    deps.ledger.give_up_unrecorded(KEY)
    settle_by_agent(deps, ledger(deps), paid=False, reference=None)

    late = settle_provider_result(deps, ProviderResult(
        event_id="EVT-NO", payment_id="PAY-0043", status="failed", amount=Decimal(2000), currency="XOF",
        account_number=ACCOUNT, msisdn=AWA, failure_reason="declined_by_customer", idempotency_key=KEY))

    assert (late.changed, late.kept, late.mismatch) == (False, False, ())
    assert deps.ledger.mismatches(f"none-{KEY}") == [] and audit.events == []
    assert ledger(deps).vend is None


def test_a_long_refusal_is_kept_and_audited_cut_at_200_characters(deps, vending, audit) -> None:
    vending.fail = Rejected("the meter " + "is blocked " * 30, code="meter_blocked")

    assert vend_token(deps, settled_by_hand(deps), "agent", NOW) == "refused"

    said = "meter_blocked: the meter " + "is blocked " * 30
    assert vend_said(deps) == said[:200]
    [event] = audit.events
    assert event.detail == f"vending system refused the token: {said}"[:200] and len(event.detail) == 200


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone is not UTC (nine hours ahead)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_supervisors_vend_unanswered_is_asked_again_30_s_later_whatever_the_local_zone(deps, vending,
                                                                                         tokyo) -> None:
    """A supervisor's vend carries no time of its own: its wait counts from now in UTC, as the worker's does."""
    assert deps.ledger is not None
    vending.fail = BackendUnavailable("down")

    assert vend_token(deps, settled_by_hand(deps), "agent") == "unavailable"

    now = datetime.now(UTC)
    assert deps.ledger.to_vend(now + timedelta(seconds=20)) == []
    assert [p.idempotency_key for p in deps.ledger.to_vend(now + timedelta(seconds=31))] == [KEY]
