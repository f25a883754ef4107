"""The product's database through its repositories, migrated by Alembic, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

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
from app.storage.models import PinCredentialRow
from dialogs.stores import PendingTicket
from engine.audit import SessionRecord


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
    assert not changed and ledger.get("k1").status == "succeeded"
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
                         amount=Decimal("100"), language="en")
    assert made.language == "en" and ledger.get("k2").language == "en"
