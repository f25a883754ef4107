"""The product's database through its repositories, migrated by Alembic, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event as db_events
from sqlalchemy import select, text

from app.storage import (
    SqlAccountLinks,
    SqlAuditSink,
    SqlOutbox,
    SqlPaymentLedger,
    SqlPendingTickets,
    SqlPinVault,
    SqlPreferences,
    SqlSubscriptions,
    make_sessions,
    migrate,
)
from app.storage.models import PaymentIntentRow, PinCredentialRow
from dialogs.stores import PendingTicket, PinVerdict
from engine.audit import SessionRecord
from tests.support.clock import SettableClock
from tests.support.present import present


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'engine.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sessions(database_url):
    migrate(database_url)
    migrate(database_url)  # a second run is a no-op
    factory = make_sessions(database_url)
    yield factory
    factory.kw["bind"].dispose()


def test_links_and_preferences(sessions):
    links, prefs = SqlAccountLinks(sessions), SqlPreferences(sessions)
    links.link("+221770000001", "1000001", "billing")
    links.link("+221770000001", "1000001", "self-service")
    links.link("+221770000001", "1000002", "self-service")
    assert [(l.account_number, l.source) for l in links.accounts_for("+221770000001")] == [
        ("1000001", "billing"), ("1000002", "self-service")]
    assert prefs.language("+221770000001") is None
    prefs.set_language("+221770000001", "en")
    prefs.set_language("+221770000001", "fr")
    assert prefs.language("+221770000001") == "fr"


def test_audit_record_and_gateway_report_in_either_order(sessions):
    audit = SqlAuditSink(sessions)
    record = SessionRecord("ussd:a", "ussd", "+2217*****001", "main", "1-x", ("identify", "home", "bye"), "bye",
                           1_000.0, 1_012.5, 3)
    audit.record(record)
    audit.complete("ussd:a", channel="ussd", user_masked="+2217*****001", status="Success", duration_ms=12_600,
                   error=None, hops=3)
    audit.complete("ussd:b", channel="ussd", user_masked="+2217*****002", status="Failed", duration_ms=None,
                   error="timeout", hops=1)
    audit.complete("ussd:b", channel="ussd", user_masked="+2217*****002", status="Failed", duration_ms=None,
                   error="timeout", hops=1)
    with sessions() as db:
        rows = {r[0]: r for r in db.execute(text(
            "select session_key, outcome, nodes, gateway_status, duration_ms from session_audit")).all()}
    assert rows["ussd:a"][1:] == ("bye", "identify home bye", "Success", 12_500)
    assert rows["ussd:b"][1] == "dropped" and rows["ussd:b"][3] == "Failed"


def test_pin_vault_hashes_counts_and_locks(sessions):
    vault = SqlPinVault(sessions)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert vault.verify("+221770000001", "4821", now).result == "not_set"
    vault.stage_pin("+221770000001", "4821")
    assert not vault.is_set("+221770000001")
    assert not vault.confirm_pin("+221770000001", "4822")
    vault.stage_pin("+221770000001", "4821")
    assert vault.confirm_pin("+221770000001", "4821")
    with sessions() as db:
        stored = db.get(PinCredentialRow, "+221770000001").pin_hash
    assert "4821" not in stored and stored.startswith("scrypt$")
    assert vault.verify("+221770000001", "4821", now).result == "ok"
    assert vault.verify("+221770000001", "0000", now).attempts_left == 2
    assert vault.verify("+221770000001", "0000", now).attempts_left == 1
    locked = vault.verify("+221770000001", "0000", now)
    assert locked.result == "locked"
    assert vault.verify("+221770000001", "4821", now + timedelta(minutes=14)).result == "locked"
    assert vault.verify("+221770000001", "4821", now + timedelta(minutes=16)).result == "ok"


def test_payment_ledger_settles_each_event_once(sessions):
    ledger = SqlPaymentLedger(sessions)
    first = ledger.create(idempotency_key="k1", msisdn="+221770000001", account_number="1000001", purpose="bill",
                          amount=Decimal(12500))
    again = ledger.create(idempotency_key="k1", msisdn="+221770000001", account_number="1000001", purpose="bill",
                          amount=Decimal(12500))
    assert first.status == again.status == "created"
    ledger.mark_pending("k1", "pay_1")
    payment, changed = ledger.settle(event_id="ev1", provider_payment_id="pay_1", status="succeeded",
                                     reference="MM123", token=None, failure_reason=None)
    assert changed and payment is not None and payment.status == "succeeded"
    _, changed = ledger.settle(event_id="ev1", provider_payment_id="pay_1", status="succeeded", reference="MM123",
                               token=None, failure_reason=None)
    assert not changed
    _, changed = ledger.settle(event_id="ev2", provider_payment_id="pay_1", status="failed", reference=None,
                               token=None, failure_reason="late")
    assert not changed and present(ledger.get("k1")).status == "succeeded"
    assert ledger.settle(event_id="ev3", provider_payment_id="nope", status="succeeded", reference=None,
                         token=None, failure_reason=None) == (None, False)
    assert [p.reference for p in ledger.recent("+221770000001")] == ["MM123"]


def test_outbox_subscriptions_and_pending_tickets(sessions):
    outbox, subs, pending = SqlOutbox(sessions), SqlSubscriptions(sessions), SqlPendingTickets(sessions)
    assert outbox.add(kind="payment_receipt", msisdn="+221770000001", language="fr", payload={"amount": "12500"},
                      dedupe_key="payment:pay_1:succeeded")
    assert not outbox.add(kind="payment_receipt", msisdn="+221770000001", language="fr", payload={},
                          dedupe_key="payment:pay_1:succeeded")
    assert [e["payload"] for e in outbox.pending()] == [{"amount": "12500"}]
    subs.subscribe("+221770000001", "outage_zone", "DKR-MEDINA")
    subs.subscribe("+221770000001", "outage_zone", "DKR-MEDINA")
    subs.unsubscribe("+221770000001", "bill_issued", "1000001")
    assert [(s.topic, s.scope) for s in subs.for_user("+221770000001")] == [("outage_zone", "DKR-MEDINA")]
    ticket = PendingTicket("c1", "+221770000001", "1000001", "complaint", "billing", "Billing dispute", "pending")
    pending.add(ticket)
    pending.add(ticket)
    assert [t.client_reference for t in pending.due()] == ["c1"]
    pending.mark_sent("c1", "REC-AB12")
    assert pending.due() == [] and pending.for_user("+221770000001")[0].ticket_reference == "REC-AB12"


def test_payment_keeps_the_language_of_its_receipt(sessions):
    ledger = SqlPaymentLedger(sessions)
    made = ledger.create(idempotency_key="k2", msisdn="+221770000002", account_number="2000001", purpose="bill",
                         amount=Decimal(100), language="en")
    assert made.language == "en" and present(ledger.get("k2")).language == "en"


# ---------------------------------------------------------------- the payment ledger, state by state
NUMBER = "+221770000001"


def _pending(ledger: SqlPaymentLedger, key: str = "k1", provider_id: str = "pay_1", msisdn: str = NUMBER,
             amount: str = "12500") -> None:
    ledger.create(idempotency_key=key, msisdn=msisdn, account_number="1000001", purpose="bill",
                  amount=Decimal(amount), wallet="wave")
    ledger.mark_pending(key, provider_id)


def test_a_payment_row_keeps_what_the_customer_confirmed(sessions):
    ledger = SqlPaymentLedger(sessions)
    made = ledger.create(idempotency_key="k1", msisdn=NUMBER, account_number="1000001", purpose="prepaid",
                         amount=Decimal(5000), wallet="wave")
    assert (made.status, made.amount, made.purpose, made.wallet, made.language, made.currency, made.status_checks) \
        == ("created", Decimal(5000), "prepaid", "wave", "fr", "XOF", 0)
    assert made.provider_payment_id is None and made.created_at is not None
    assert ledger.get("nope") is None and ledger.by_provider_id("nope") is None
    with pytest.raises(KeyError, match="nope"):    # the operator's trace names the payment
        ledger.mark_pending("nope", "pay_9")


def test_a_payment_goes_pending_once_and_a_final_one_never_back(sessions):
    ledger = SqlPaymentLedger(sessions)
    _pending(ledger)
    assert present(ledger.get("k1")).status == "pending"
    assert present(ledger.by_provider_id("pay_1")).idempotency_key == "k1"
    ledger.settle(event_id="e1", provider_payment_id="pay_1", status="succeeded", reference="MM1", token=None,
                  failure_reason=None)
    assert ledger.mark_pending("k1", "pay_1").status == "succeeded"


def test_the_payments_awaited_on_an_account_are_those_the_provider_may_have_taken_oldest_first(sessions):
    ledger = SqlPaymentLedger(sessions)
    _pending(ledger, "k1", "pay_1", amount="5000")
    _pending(ledger, "k2", "pay_2", msisdn="+221770000002", amount="2000")    # another number, the same account
    ledger.give_up("k2")                                                       # unconfirmed: still awaited
    _pending(ledger, "k3", "pay_3")
    ledger.settle(event_id="e3", provider_payment_id="pay_3", status="succeeded", reference="MM3", token=None,
                  failure_reason=None)
    # created: its provider id never recorded (our write failed, or its answer lost): it may be debited.
    ledger.create(idempotency_key="k4", msisdn=NUMBER, account_number="1000001", purpose="bill", amount=Decimal(700))
    ledger.create(idempotency_key="k7", msisdn=NUMBER, account_number="1000001", purpose="bill", amount=Decimal(300))
    ledger.mark_not_started("k7")                                              # the provider never got it
    ledger.create(idempotency_key="k5", msisdn=NUMBER, account_number="1000001", purpose="prepaid",
                  amount=Decimal(900))
    ledger.mark_pending("k5", "pay_5")
    ledger.create(idempotency_key="k6", msisdn=NUMBER, account_number="1000002", purpose="bill", amount=Decimal(800))
    ledger.mark_pending("k6", "pay_6")
    awaited = ledger.awaiting("1000001", "bill")
    assert [(p.idempotency_key, p.amount, p.status) for p in awaited] == [
        ("k1", Decimal(5000), "pending"), ("k2", Decimal(2000), "unconfirmed"), ("k4", Decimal(700), "created")]
    assert ledger.awaiting("1000009", "bill") == []
    present(ledger.give_up_unrecorded("k4"))                                   # unresolved: still awaited
    assert [p.status for p in ledger.awaiting("1000001", "bill")] == ["pending", "unconfirmed", "unresolved"]


def test_a_refusal_fails_only_a_payment_not_yet_started(sessions):
    ledger = SqlPaymentLedger(sessions)
    ledger.create(idempotency_key="k1", msisdn=NUMBER, account_number="1000001", purpose="bill", amount=Decimal(100))
    refused = present(ledger.mark_refused("k1", "x" * 200))
    assert refused.status == "failed" and refused.failure_reason == "x" * 120
    _pending(ledger, "k2", "pay_2")
    assert present(ledger.mark_refused("k2", "late")).status == "pending"
    assert ledger.mark_refused("nope", "late") is None
    ledger.create(idempotency_key="k3", msisdn=NUMBER, account_number="1000001", purpose="bill", amount=Decimal(100))
    ledger.create(idempotency_key="k4", msisdn=NUMBER, account_number="1000001", purpose="bill", amount=Decimal(100))
    ledger.mark_refused("k3", "insufficient_funds")
    assert present(ledger.get("k4")).status == "created"          # only the payment refused


def test_only_the_providers_final_word_settles_and_only_an_open_payment(sessions):
    ledger = SqlPaymentLedger(sessions)
    _pending(ledger)
    payment, changed = ledger.settle(event_id="e0", provider_payment_id="pay_1", status="pending", reference=None,
                                     token=None, failure_reason=None)
    assert not changed and present(payment).status == "pending"
    ledger.create(idempotency_key="k2", msisdn=NUMBER, account_number="1000001", purpose="bill", amount=Decimal(1))
    # A created payment the provider never acknowledged has no provider id a result could match.
    assert ledger.settle(event_id="e1", provider_payment_id="pay_2", status="succeeded", reference=None,
                         token=None, failure_reason=None) == (None, False)
    payment, changed = ledger.settle(event_id="e2", provider_payment_id="pay_1", status="failed", reference=None,
                                     token=None, failure_reason="insufficient_funds")
    assert changed and payment is not None
    assert (payment.status, payment.failure_reason) == ("failed", "insufficient_funds")


def test_a_late_word_still_settles_an_unconfirmed_payment(sessions):
    ledger = SqlPaymentLedger(sessions)
    _pending(ledger)
    given_up = present(ledger.give_up("k1"))
    assert given_up.status == "unconfirmed" and ledger.give_up("k1") is None
    payment, changed = ledger.settle(event_id="e1", provider_payment_id="pay_1", status="succeeded",
                                     reference="MM1", token="12345678901234567890", failure_reason=None)
    assert changed and payment is not None
    assert (payment.status, payment.reference, payment.token) == ("succeeded", "MM1", "12345678901234567890")
    assert ledger.give_up("k1") is None and present(ledger.get("k1")).status == "succeeded"


def _settled_by_agent(ledger: SqlPaymentLedger, key: str, provider_id: str) -> None:
    """A bill payment an agent settled as paid: owed to billing in the same write."""
    _pending(ledger, key, provider_id)
    ledger.settle(event_id=f"e-{key}", provider_payment_id=provider_id, status="succeeded", reference=provider_id,
                  token=None, failure_reason=None, post_to_billing=True)


def _with_billing(sessions, key: str) -> tuple[str | None, str | None]:
    """What the agents' console reads of a payment and billing: due, posted, refused or handled, and what was said."""
    with sessions() as db:
        row = db.scalars(select(PaymentIntentRow).where(PaymentIntentRow.idempotency_key == key)).one()
        return row.billing_post, row.billing_said


def test_an_agents_paid_is_owed_to_billing_oldest_first_until_posted_and_a_refusal_moves_once(sessions):
    ledger = SqlPaymentLedger(sessions)
    for i in (1, 2, 3):
        _settled_by_agent(ledger, f"k{i}", f"pay_{i}")
    _pending(ledger, "k9", "pay_9")                 # the provider's own approval: never owed to billing
    ledger.settle(event_id="e9", provider_payment_id="pay_9", status="succeeded", reference="MM9", token=None,
                  failure_reason=None)
    assert [p.idempotency_key for p in ledger.to_post_to_billing()] == ["k1", "k2", "k3"]
    assert [p.idempotency_key for p in ledger.to_post_to_billing(limit=2)] == ["k1", "k2"]
    ledger.mark_billing("k1", "posted")
    ledger.mark_billing("k2", "refused", "Conflict: " + "x" * 300)
    assert [p.idempotency_key for p in ledger.to_post_to_billing()] == ["k3"]
    assert _with_billing(sessions, "k2") == ("refused", "Conflict: " + "x" * 190)
    ledger.mark_billing("k1", "refused", "late")    # only a payment due to billing moves
    assert _with_billing(sessions, "k1") == ("posted", None)
    # A supervisor posts it again (refused -> due) once: a double click moves nothing.
    assert ledger.move_billing("k2", "refused", "due") is True
    assert ledger.move_billing("k2", "refused", "due") is False
    assert _with_billing(sessions, "k2") == ("due", "Conflict: " + "x" * 190)
    assert [p.idempotency_key for p in ledger.to_post_to_billing()] == ["k2", "k3"]
    # Refused again, then marked handled with the supervisor's reason, once.
    ledger.mark_billing("k2", "refused", "Conflict: again")
    assert ledger.move_billing("k2", "refused", "handled", "handled by dev:moussa: credited by hand") is True
    assert ledger.move_billing("k2", "refused", "handled", "twice") is False
    assert _with_billing(sessions, "k2") == ("handled", "handled by dev:moussa: credited by hand")
    assert ledger.move_billing("k3", "refused", "handled", "not refused") is False
    assert ledger.move_billing("nope", "refused", "due") is False
    assert _with_billing(sessions, "k3") == ("due", None) and _with_billing(sessions, "k9") == (None, None)


def test_a_provider_id_found_by_our_key_is_recorded_on_that_payment_only_and_its_questions_start_afresh(sessions):
    clock = SettableClock(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    ledger = SqlPaymentLedger(sessions, clock=clock)
    for key in ("k1", "k2", "k3"):
        ledger.create(idempotency_key=key, msisdn=NUMBER, account_number="1000001", purpose="bill",
                      amount=Decimal(500), wallet="wave")
    for _ in range(3):                       # asked about by our key three times, the provider unreachable
        ledger.note_status_check("k1", clock.now - timedelta(hours=1))
    ledger.mark_refused("k3", "insufficient_funds")
    recorded = present(ledger.record_provider_id("k1", "pay_1"))
    assert (recorded.status, recorded.provider_payment_id, recorded.status_checks) == ("pending", "pay_1", 0)
    # Five status questions from now on, the first a full wait after it was recorded.
    assert ledger.due_for_status(clock.now + timedelta(seconds=299), 300) == []
    assert [p.idempotency_key for p in ledger.due_for_status(clock.now + timedelta(seconds=300), 300)] == ["k1"]
    assert ledger.record_provider_id("k1", "pay_other") is None       # recorded once
    assert (present(ledger.get("k2")).status, present(ledger.get("k2")).provider_payment_id) == ("created", None)
    # A payment the provider refused is over: a provider id by its key records nothing.
    assert ledger.record_provider_id("k3", "pay_3") is None
    assert (present(ledger.get("k3")).status, present(ledger.get("k3")).provider_payment_id) == ("failed", None)


def test_a_payment_never_sent_nor_answered_about_is_flagged_once_and_its_first_answer_unflags_it(sessions):
    ledger = SqlPaymentLedger(sessions)
    ledger.create(idempotency_key="k1", msisdn=NUMBER, account_number="1000001", purpose="bill", amount=Decimal(500))
    present(ledger.mark_not_started("k1"))
    wall = datetime.now(UTC)
    assert ledger.flag_unanswered(wall, 86_400) == []                       # not a day yet
    [flagged] = ledger.flag_unanswered(wall + timedelta(days=2), 86_400)
    assert (flagged.idempotency_key, flagged.status) == ("k1", "unanswered")
    assert ledger.flag_unanswered(wall + timedelta(days=2), 86_400) == []   # flagged once
    # The provider's first answer at last, "no payment under this key": not started, as the customer was told.
    ledger.note_answered("k1", wall + timedelta(days=2))
    assert present(ledger.mark_not_started("k1")).status == "not_started"
    assert ledger.mark_not_started("k1") is None
    assert ledger.flag_unanswered(wall + timedelta(days=3), 86_400) == []   # answered: never flagged again


def test_recent_payments_are_the_callers_newest_first(sessions):
    ledger = SqlPaymentLedger(sessions)
    for i in range(7):
        _pending(ledger, f"k{i}", f"pay_{i}")
    _pending(ledger, "other", "pay_o", msisdn="+221770000009")
    assert [p.idempotency_key for p in ledger.recent(NUMBER)] == ["k6", "k5", "k4", "k3", "k2"]
    assert [p.idempotency_key for p in ledger.recent(NUMBER, limit=2)] == ["k6", "k5"]


def test_a_mismatched_result_is_kept_as_received_for_an_agent(sessions):
    from dialogs.stores import ProviderResult

    ledger = SqlPaymentLedger(sessions)
    for event, amount in (("e" * 100, Decimal("1.50")), ("e2", None)):
        ledger.keep_mismatch(ProviderResult(event_id=event, payment_id="pay_1", status="succeeded", amount=amount,
                                            currency="EUR", account_number="9999999", msisdn="+221779999999",
                                            reference="MM1", failure_reason=None, source="status"),
                             ["amount", "currency"])
    first, second = ledger.mismatches("pay_1")
    assert first["event_id"] == "e" * 80 and second["event_id"] == "e2"
    assert (first["source"], first["reasons"], first["status"]) == ("status", "amount,currency", "open")
    assert json.loads(first["received"]) == {"status": "succeeded", "amount": "1.50", "currency": "EUR",
                                             "account_number": "9999999", "msisdn": "+221779999999",
                                             "reference": "MM1", "failure_reason": None}
    assert json.loads(second["received"])["amount"] is None
    assert ledger.mismatches("pay_2") == []


def test_a_payment_is_due_for_a_status_question_once_the_wait_has_passed_since_it_was_last_heard_of(sessions):
    # The ledger stamps "pending since" on the clock it is given: the product's, the worker's "now".
    clock = SettableClock(datetime(2026, 12, 31, 23, 58, tzinfo=UTC))
    ledger = SqlPaymentLedger(sessions, clock=clock)
    start = clock.now
    _pending(ledger)
    clock.advance(hours=3)    # later stamps of other payments do not move this one's
    ledger.create(idempotency_key="created", msisdn=NUMBER, account_number="1000001", purpose="bill",
                  amount=Decimal(100))
    assert present(ledger.get("k1")).status == "pending"
    assert ledger.due_for_status(start + timedelta(seconds=299), 300) == []
    assert [p.idempotency_key for p in ledger.due_for_status(start + timedelta(seconds=300), 300)] == ["k1"]
    assert ledger.note_status_check("k1", start + timedelta(seconds=300)) == 1
    assert present(ledger.get("k1")).status_checks == 1
    # Asked just now: due again only once the wait has passed since that question.
    assert ledger.due_for_status(start + timedelta(seconds=599), 300) == []
    assert [p.idempotency_key for p in ledger.due_for_status(start + timedelta(seconds=600), 300)] == ["k1"]
    assert ledger.note_status_check("k1", start + timedelta(seconds=600)) == 2
    assert ledger.note_status_check("nope", start) == 0
    _pending(ledger, "k2", "pay_2")           # pending since start + 3 h
    assert [p.idempotency_key for p in ledger.due_for_status(clock.now + timedelta(seconds=299), 300)] == ["k1"]
    assert len(ledger.due_for_status(clock.now + timedelta(days=1), 300, limit=1)) == 1
    ledger.give_up("k1")
    assert [p.idempotency_key for p in ledger.due_for_status(clock.now + timedelta(seconds=300), 300)] == ["k2"]


def test_pending_since_is_stamped_once_on_the_ledgers_clock_and_kept_in_utc(sessions):
    """What an agent reads in the console and what the worker measures its wait from."""
    clock = SettableClock(datetime(2027, 3, 1, 0, 0, 0, tzinfo=UTC))
    ledger = SqlPaymentLedger(sessions, clock=clock)
    _pending(ledger)
    clock.advance(minutes=7)
    ledger.mark_pending("k1", "pay_1")        # the provider's acknowledgement again: still pending since 00:00
    with sessions() as db:
        stamped = db.execute(text("select pending_since from payment_intents where idempotency_key='k1'")
                             ).scalar_one()
    stamped = stamped if isinstance(stamped, datetime) else datetime.fromisoformat(str(stamped))
    assert stamped.replace(tzinfo=stamped.tzinfo or UTC) == datetime(2027, 3, 1, 0, 0, 0, tzinfo=UTC)


def test_a_ledger_without_a_clock_stamps_pending_since_on_the_wall_clock_in_utc(sessions):
    before = datetime.now(UTC)
    _pending(SqlPaymentLedger(sessions))
    after = datetime.now(UTC)
    ledger = SqlPaymentLedger(sessions)
    assert ledger.due_for_status(before + timedelta(seconds=299), 300) == []
    assert [p.idempotency_key for p in ledger.due_for_status(after + timedelta(seconds=300), 300)] == ["k1"]


@contextmanager
def _first_commit_preceded_by(sessions, action: Callable[[], None]) -> Iterator[None]:
    """Runs ``action`` (another writer) just before the next commit of a session of ``sessions``:
    between the code's own reads and its writes, the moment a concurrent hop would slip in."""
    pending = [action]

    def before_commit(_session: Any) -> None:
        if pending:
            pending.pop()()

    db_events.listen(sessions, "before_commit", before_commit)
    try:
        yield
    finally:
        db_events.remove(sessions, "before_commit", before_commit)


def test_two_hops_creating_the_same_payment_at_once_leave_one_row_and_both_get_it(sessions):
    """The other hop's INSERT lands between this one's look-up and its commit (a race the unique key
    decides): this hop gets the payment on record instead of an error, and the ledger holds one row."""
    ledger = SqlPaymentLedger(sessions)

    def other_hop() -> None:
        SqlPaymentLedger(sessions).create(idempotency_key="k1", msisdn=NUMBER, account_number="1000001",
                                          purpose="bill", amount=Decimal(12500), wallet="wave")

    with _first_commit_preceded_by(sessions, other_hop):
        made = ledger.create(idempotency_key="k1", msisdn=NUMBER, account_number="1000001", purpose="bill",
                             amount=Decimal(12500), wallet="wave")
    assert (made.idempotency_key, made.status, made.amount, made.wallet) == ("k1", "created", Decimal(12500), "wave")
    with sessions() as db:
        assert db.execute(text("select count(*) from payment_intents")).scalar_one() == 1
    ledger.mark_pending("k1", "pay_1")
    assert present(ledger.get("k1")).status == "pending"


def test_an_event_id_taken_by_another_payment_meanwhile_settles_nothing(postgres_url):
    """The provider reuses an event id for two payments and both results arrive at once: the one whose
    event is recorded first settles; the other is rolled back, stays pending and is reported unchanged
    (so no receipt is queued for it). PostgreSQL only: SQLite serialises the two writers."""
    migrate(postgres_url)
    sessions = make_sessions(postgres_url)
    try:
        ledger = SqlPaymentLedger(sessions)
        _pending(ledger, "k1", "pay_1")
        _pending(ledger, "k2", "pay_2")

        def other_payment_records_the_event() -> None:
            with sessions.kw["bind"].begin() as other:
                other.execute(text("insert into processed_callbacks (event_id) values ('ev1')"))

        with _first_commit_preceded_by(sessions, other_payment_records_the_event):
            payment, changed = ledger.settle(event_id="ev1", provider_payment_id="pay_2", status="succeeded",
                                             reference="MM2", token=None, failure_reason=None)
        assert changed is False and payment is not None
        assert (payment.provider_payment_id, payment.status, payment.reference) == ("pay_2", "pending", None)
        assert present(ledger.get("k2")).status == "pending"
    finally:
        sessions.kw["bind"].dispose()


# ---------------------------------------------------------------- the PIN vault, try by try
def test_a_pin_is_kept_as_a_salted_scrypt_hash(sessions):
    from app.storage.pins import check_pin, hash_pin

    stored = hash_pin("4821")
    assert stored.startswith("scrypt$16384$8$1$") and stored != hash_pin("4821")
    assert check_pin("4821", stored) and not check_pin("4822", stored)
    assert not check_pin("4821", "garbage") and not check_pin("4821", "scrypt$x$8$1$AAAA$AAAA")


def lock_out(vault: SqlPinVault, now: datetime) -> PinVerdict:
    """Three wrong PINs from the customer at ``now``: the verdict of the third, which locks the PIN."""
    for _ in range(3):
        verdict = vault.verify(NUMBER, "0000", now)
    return verdict


def test_a_staged_pin_is_no_pin_until_confirmed_and_a_wrong_confirmation_drops_it(sessions):
    vault = SqlPinVault(sessions)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert not vault.confirm_pin(NUMBER, "4821")
    vault.stage_pin(NUMBER, "4821")
    assert vault.verify(NUMBER, "4821", now).result == "not_set" and vault.lock_state(NUMBER, now) is None
    assert not vault.confirm_pin(NUMBER, "4822")
    assert not vault.confirm_pin(NUMBER, "4821")     # the staged PIN went with the wrong confirmation
    assert not vault.is_set(NUMBER)


def test_a_lock_over_gives_three_fresh_tries_and_lockouts_in_a_row_grow(sessions):
    vault = SqlPinVault(sessions)
    vault.set_pin(NUMBER, "4821")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    lengths = []
    for _ in range(4):
        for _ in range(2):
            assert vault.verify(NUMBER, "0000", now).result == "wrong"
        locked = vault.verify(NUMBER, "0000", now)
        assert locked.result == "locked" and locked.newly_locked
        assert vault.verify(NUMBER, "0000", now).newly_locked is False
        state = vault.lock_state(NUMBER, now)
        assert state is not None and state.locked_until == locked.locked_until and state.lockouts == locked.lockouts
        lengths.append(present(locked.locked_until) - now)
        now = min(present(locked.locked_until), now + timedelta(days=2))
    assert lengths[:3] == [timedelta(minutes=15), timedelta(hours=1), timedelta(hours=24)]
    assert lengths[3] > timedelta(days=365 * 1000)     # only an agent unlocks
    assert vault.verify(NUMBER, "4821", now).result == "locked"
    assert vault.unlock(NUMBER) and not vault.unlock(NUMBER)
    assert vault.lock_state(NUMBER, now) is None
    assert vault.verify(NUMBER, "4821", now).result == "ok"
    last = lock_out(vault, now)
    assert present(last.locked_until) - now == timedelta(minutes=15)      # the unlock started the ladder again


def test_a_right_pin_after_a_lock_starts_the_ladder_again(sessions):
    vault = SqlPinVault(sessions)
    vault.set_pin(NUMBER, "4821")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    lock_out(vault, now)
    now += timedelta(minutes=15)
    assert vault.verify(NUMBER, "0000", now).attempts_left == 2     # fresh tries once the lock is over
    assert vault.verify(NUMBER, "4821", now).result == "ok"
    last = lock_out(vault, now)
    assert (present(last.locked_until) - now, last.lockouts) == (timedelta(minutes=15), 1)


def test_a_new_pin_set_or_confirmed_clears_the_lock(sessions):
    vault = SqlPinVault(sessions)
    vault.set_pin(NUMBER, "4821")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    lock_out(vault, now)
    vault.stage_pin(NUMBER, "7395")
    assert vault.lock_state(NUMBER, now) is not None    # staging alone changes nothing
    assert vault.confirm_pin(NUMBER, "7395")
    assert vault.lock_state(NUMBER, now) is None and vault.verify(NUMBER, "7395", now).result == "ok"
    lock_out(vault, now)
    vault.set_pin(NUMBER, "9182")
    assert vault.verify(NUMBER, "9182", now).result == "ok"
    last = lock_out(vault, now)
    assert present(last.locked_until) - now == timedelta(minutes=15)


def test_one_customers_tries_lock_pin_and_unlock_leave_every_other_customer_alone(sessions):
    vault = SqlPinVault(sessions)
    other = "+221770000002"
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    vault.set_pin(NUMBER, "4821")
    vault.set_pin(other, "7395")
    assert vault.verify(other, "0000", now).attempts_left == 2       # the neighbour has mistyped once
    locked = lock_out(vault, now)
    assert locked.result == "locked" and locked.newly_locked and locked.lockouts == 1
    # Our customer's lock is theirs alone: the neighbour is not locked and keeps their own count.
    assert vault.lock_state(other, now) is None
    assert vault.verify(other, "0000", now).attempts_left == 1
    assert vault.verify(other, "7395", now).result == "ok"
    for _ in range(3):
        theirs = vault.verify(other, "0000", now)
    assert (theirs.result, theirs.newly_locked, theirs.lockouts) == ("locked", True, 1)
    assert present(theirs.locked_until) - now == timedelta(minutes=15)
    # An agent's unlock of one is not the other's.
    assert vault.unlock(NUMBER)
    assert vault.lock_state(NUMBER, now) is None
    state = vault.lock_state(other, now)
    assert state is not None and state.lockouts == 1
    assert vault.verify(other, "7395", now).result == "locked"
    # After the unlock, three fresh tries (the count went with the lock), and the ladder starts again.
    assert vault.verify(NUMBER, "0000", now).attempts_left == 2
    assert vault.verify(NUMBER, "4821", now).result == "ok"
    # A new PIN, staged or set, is the customer's own.
    vault.stage_pin(NUMBER, "5067")
    assert not vault.confirm_pin(other, "5067")
    assert vault.confirm_pin(NUMBER, "5067")
    assert vault.verify(NUMBER, "5067", now).result == "ok"
    vault.set_pin(NUMBER, "6174")
    assert vault.lock_state(other, now) is not None                   # setting ours cleared no one else's lock
    with sessions() as db:
        row = db.get(PinCredentialRow, other)
        assert (row.failed_attempts, row.lockouts) == (0, 1)          # the lock reset the neighbour's count


def test_a_lock_resets_the_count_so_the_tries_after_it_are_three(sessions):
    vault = SqlPinVault(sessions)
    vault.set_pin(NUMBER, "4821")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    lock_out(vault, now)
    with sessions() as db:
        row = db.get(PinCredentialRow, NUMBER)
        assert (row.failed_attempts, row.lockouts) == (0, 1) and row.pin_hash.startswith("scrypt$")
    assert vault.verify(NUMBER, "4821", now + timedelta(minutes=15)).result == "ok"


def test_a_try_during_a_lock_is_told_the_lock_until_the_very_moment_it_ends(sessions):
    vault = SqlPinVault(sessions)
    vault.set_pin(NUMBER, "4821")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    until = now + timedelta(minutes=15)
    locked = lock_out(vault, now)
    assert locked == PinVerdict("locked", 0, until, 1, newly_locked=True)
    assert vault.verify(NUMBER, "4821", now + timedelta(minutes=14)) == PinVerdict("locked", 0, until, 1)
    assert vault.lock_state(NUMBER, until - timedelta(seconds=1)) == PinVerdict("locked", 0, until, 1)
    assert vault.lock_state(NUMBER, until) is None       # over at the minute it was announced to end
    assert vault.verify(NUMBER, "4821", until) == PinVerdict("ok", 3)


def _three_tries_then_a_lock(vault: SqlPinVault, msisdn: str, now: datetime) -> tuple[list[int], timedelta, int]:
    """Wrong PINs until locked: the tries left after each, how long the lock lasts and which lockout it is."""
    left = [vault.verify(msisdn, "0000", now).attempts_left for _ in range(2)]
    locked = vault.verify(msisdn, "0000", now)
    assert locked.result == "locked" and locked.locked_until is not None
    return left, present(locked.locked_until) - now, locked.lockouts


FRESH = ([2, 1], timedelta(minutes=15), 1)   # three tries, then the first and shortest lockout


def test_a_pin_set_staged_and_confirmed_or_unlocked_starts_with_three_tries_and_the_shortest_lock(sessions):
    vault = SqlPinVault(sessions)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    first, staged, reset, changed, unlocked = (f"+22177000010{i}" for i in range(5))
    vault.set_pin(first, "4821")                             # a first PIN set (by an agent)
    assert _three_tries_then_a_lock(vault, first, now) == FRESH
    vault.stage_pin(staged, "4821")                          # a first PIN chosen and confirmed
    assert vault.confirm_pin(staged, "4821")
    assert _three_tries_then_a_lock(vault, staged, now) == FRESH
    for msisdn in (reset, changed, unlocked):                # locked twice: the next lock would be an hour
        vault.set_pin(msisdn, "4821")
        _three_tries_then_a_lock(vault, msisdn, now)
        _three_tries_then_a_lock(vault, msisdn, now + timedelta(minutes=15))
    later = now + timedelta(minutes=30)
    vault.set_pin(reset, "7395")                             # a new PIN set over the lock
    assert _three_tries_then_a_lock(vault, reset, later) == FRESH
    vault.stage_pin(changed, "7395")                         # a new PIN confirmed over the lock
    assert vault.confirm_pin(changed, "7395")
    assert _three_tries_then_a_lock(vault, changed, later) == FRESH
    assert vault.unlock(unlocked)                            # an agent's unlock
    assert _three_tries_then_a_lock(vault, unlocked, later) == FRESH


@pytest.fixture
def server_zone_west_africa(monkeypatch):
    """The server's local zone one hour east of UTC (West Africa Time), as a host may be configured."""
    monkeypatch.setenv("TZ", "WAT-1")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_lock_lasts_fifteen_minutes_whatever_the_servers_zone_and_the_callers(sessions, server_zone_west_africa):
    vault = SqlPinVault(sessions)
    vault.set_pin(NUMBER, "4821")
    now = datetime(2026, 11, 25, 13, 0, tzinfo=timezone(timedelta(hours=1)))     # 12:00 UTC
    locked = lock_out(vault, now)
    assert locked.locked_until == datetime(2026, 11, 25, 12, 15, tzinfo=UTC)
    assert vault.lock_state(NUMBER, datetime(2026, 11, 25, 12, 14, tzinfo=UTC)) is not None
    assert vault.lock_state(NUMBER, datetime(2026, 11, 25, 12, 15, tzinfo=UTC)) is None
    assert vault.verify(NUMBER, "4821", datetime(2026, 11, 25, 12, 15, tzinfo=UTC)).result == "ok"
