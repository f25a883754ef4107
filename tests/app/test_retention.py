"""Retention: what is past its period is scrubbed (tokens, texts) or deleted; nothing unfinished is touched.

The clock is the ``clock`` fixture (a year-end just before midnight, a midnight after February), never
the wall clock: every age below is counted from it, and each period is checked on both sides of its boundary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.storage import make_sessions, migrate
from app.storage.models import (
    EmailStopRow,
    OutboxEventRow,
    PaymentIntentRow,
    PendingTicketRow,
    PreferenceRow,
    ProcessedCallbackRow,
    SecurityEventRow,
    SessionAuditRow,
    SmsInboxRow,
    SubscriptionRow,
    WhatsAppWindowRow,
)
from app.storage.retention import purge
from app.worker import PurgeSchedule

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def now(clock: datetime) -> datetime:
    return clock


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> sessionmaker[Session]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'engine.db'}"
        migrate(url)
    else:
        url = request.getfixturevalue("postgres_url")
        migrate(url)
    return make_sessions(url)


def _outbox(db: Session, key: str, status: str, created: datetime) -> None:
    db.add(OutboxEventRow(dedupe_key=key, kind="payment_receipt", msisdn="+221770000001", language="fr",
                          payload=json.dumps({"token": "1234-5678-9012", "text": "Merci"}), status=status,
                          attempts=1, created_at=created))


def _payment(db: Session, key: str, status: str, updated: datetime) -> None:
    db.add(PaymentIntentRow(idempotency_key=key, msisdn="+221770000001", account_number="2000001",
                            purpose="prepaid", amount="1000", status=status, provider_payment_id=f"pay-{key}",
                            token="5566-7788-9900" if status == "succeeded" else None,
                            created_at=updated, updated_at=updated))


def _rows(sessions: sessionmaker[Session], model: type) -> list:
    with sessions() as db:
        return list(db.scalars(select(model)).all())


def test_message_texts_and_tokens_go_first_then_the_rows(sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions() as db, db.begin():
        _outbox(db, "sent-6d", "sent", now - timedelta(days=6, hours=23))
        _outbox(db, "sent-8d", "sent", now - timedelta(days=8))
        _outbox(db, "failed-91d", "failed", now - timedelta(days=91))
        _outbox(db, "pending-200d", "pending", now - timedelta(days=200))   # still to send: never purged
    counts = purge(sessions, now)
    assert counts["outbox_events.payload"] == 2 and counts["outbox_events"] == 1   # scrubbed, then deleted
    kept = {row.dedupe_key: json.loads(row.payload) for row in _rows(sessions, OutboxEventRow)}
    assert kept["sent-6d"]["token"] == "1234-5678-9012"
    assert kept["sent-8d"] == {}
    assert "failed-91d" not in kept
    assert kept["pending-200d"]["text"] == "Merci"
    assert purge(sessions, now)["outbox_events.payload"] == 0   # nothing left to scrub


def test_prepaid_tokens_are_scrubbed_after_30_days_and_final_payments_deleted_after_400(
        sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions() as db, db.begin():
        _payment(db, "ok-29d", "succeeded", now - timedelta(days=29))
        _payment(db, "ok-31d", "succeeded", now - timedelta(days=31))
        _payment(db, "ok-401d", "succeeded", now - timedelta(days=401))
        _payment(db, "pending-500d", "pending", now - timedelta(days=500))   # never settled: an agent's case
        db.add(ProcessedCallbackRow(event_id="evt-old", received_at=now - timedelta(days=31)))
        db.add(ProcessedCallbackRow(event_id="evt-new", received_at=now - timedelta(days=1)))
    purge(sessions, now)
    tokens = {row.idempotency_key: row.token for row in _rows(sessions, PaymentIntentRow)}
    assert tokens == {"ok-29d": "5566-7788-9900", "ok-31d": None, "pending-500d": None}
    assert [row.event_id for row in _rows(sessions, ProcessedCallbackRow)] == ["evt-new"]


def test_answered_incoming_sms_kept_for_the_worker_go_after_30_days_pending_ones_never(
        sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions() as db, db.begin():
        for message_id, status, days in (("answered-29d", "answered", 29), ("late-31d", "late", 31),
                                         ("answered-31d", "answered_before", 31), ("pending-40d", "pending", 40)):
            db.add(SmsInboxRow(message_id=message_id, msisdn="+221770000001", short_code="21212", status=status,
                               attempts=1, received_at=now - timedelta(days=days)))
    assert purge(sessions, now)["sms_inbox"] == 2
    assert sorted(row.message_id for row in _rows(sessions, SmsInboxRow)) == ["answered-29d", "pending-40d"]


def test_who_wrote_to_us_on_whatsapp_and_when_goes_after_30_days(sessions: sessionmaker[Session],
                                                                  now: datetime) -> None:
    with sessions() as db, db.begin():
        for msisdn, days in (("+221770000001", 29), ("+221770000002", 31)):
            db.add(WhatsAppWindowRow(msisdn=msisdn, provider="meta", last_inbound_at=now - timedelta(days=days)))
    assert purge(sessions, now)["whatsapp_windows"] == 1
    assert [row.msisdn for row in _rows(sessions, WhatsAppWindowRow)] == ["+221770000001"]


def test_complaint_texts_audit_rows_security_events_and_withdrawn_consent(
        sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions() as db, db.begin():
        for ref, status, days in (("sent-31d", "sent", 31), ("pending-60d", "pending", 60),
                                  ("refused-181d", "refused", 181)):
            db.add(PendingTicketRow(client_reference=ref, msisdn="+221770000001", account_number="1000001",
                                    kind="complaint", category="billing", description="Mon voisin se branche",
                                    status=status, attempts=1, created_at=now - timedelta(days=days)))
        db.add(SessionAuditRow(session_key="ussd:old", channel="ussd", user_masked="+22177****001", nodes="",
                               started_at=now - timedelta(days=181), ended_at=now - timedelta(days=181)))
        db.add(SessionAuditRow(session_key="ussd:recent", channel="ussd", user_masked="+22177****001", nodes="",
                               ended_at=now - timedelta(days=40), gateway_error="Subscriber absent"))
        db.add(SecurityEventRow(occurred_at=now - timedelta(days=366), kind="pin_failed", channel="ussd",
                                detail="", extra="{}"))
        db.add(SecurityEventRow(occurred_at=now - timedelta(days=364), kind="pin_locked", channel="ussd",
                                detail="", extra="{}"))
        db.add(SubscriptionRow(msisdn="+221770000001", topic="outage", scope="", channel="sms", active=False,
                               updated_at=now - timedelta(days=366)))
        db.add(SubscriptionRow(msisdn="+221770000002", topic="outage", scope="", channel="sms", active=True,
                               updated_at=now - timedelta(days=900)))
    purge(sessions, now)
    tickets = {row.client_reference: row.description for row in _rows(sessions, PendingTicketRow)}
    assert tickets == {"sent-31d": "", "pending-60d": "Mon voisin se branche"}
    audits = {row.session_key: row.gateway_error for row in _rows(sessions, SessionAuditRow)}
    assert audits == {"ussd:recent": None}
    assert [row.kind for row in _rows(sessions, SecurityEventRow)] == ["pin_locked"]
    assert [row.msisdn for row in _rows(sessions, SubscriptionRow)] == ["+221770000002"]


def test_unconfirmed_email_addresses_and_stops_of_addresses_no_one_keeps_are_purged(
        sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions() as db, db.begin():
        # Typed, code never typed back: expired 8 days ago (purged), 6 days ago (kept); a confirmed one (kept).
        for msisdn, pending, expired_days in (("+221770000001", "old@exemple.sn", 8),
                                               ("+221770000002", "recent@exemple.sn", 6)):
            db.add(PreferenceRow(msisdn=msisdn, email_pending=pending, email_code_hash="salted$hash",
                                 email_code_expires_at=now - timedelta(days=expired_days), email_code_tries=1))
        db.add(PreferenceRow(msisdn="+221770000003", email="kept@exemple.sn", email_verified_at=now - timedelta(days=900),
                             email_code_tries=0))
        for address, days in (("kept@exemple.sn", 400), ("gone@exemple.sn", 31), ("gone-recent@exemple.sn", 29)):
            db.add(EmailStopRow(address=address, topic="all", source="one-click", created_at=now - timedelta(days=days)))
    counts = purge(sessions, now)
    assert counts["preferences.email_pending"] == 1 and counts["email_stops"] == 1
    rows = {row.msisdn: (row.email, row.email_pending, row.email_code_hash) for row in _rows(sessions, PreferenceRow)}
    assert rows == {"+221770000001": (None, None, None),
                    "+221770000002": (None, "recent@exemple.sn", "salted$hash"),
                    "+221770000003": ("kept@exemple.sn", None, None)}
    # A stop of a confirmed address is kept to be honoured; one of an address nobody keeps goes after 30 days.
    assert sorted(row.address for row in _rows(sessions, EmailStopRow)) == ["gone-recent@exemple.sn", "kept@exemple.sn"]


def test_the_worker_purges_at_start_then_once_per_interval(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    migrate(url)
    sessions = make_sessions(url)
    clock = [0.0]
    schedule = PurgeSchedule(sessions, 3_600, clock=lambda: clock[0])
    long_ago = datetime.now(UTC) - timedelta(days=100)
    with sessions() as db, db.begin():
        _outbox(db, "a", "sent", long_ago)
    assert (schedule.run_if_due() or {})["outbox_events"] == 1
    with sessions() as db, db.begin():
        _outbox(db, "b", "sent", long_ago)
    clock[0] = 3_599.0
    assert schedule.run_if_due() is None
    assert [row.dedupe_key for row in _rows(sessions, OutboxEventRow)] == ["b"]
    clock[0] = 3_600.0
    assert (schedule.run_if_due() or {})["outbox_events"] == 1
    assert _rows(sessions, OutboxEventRow) == []
    assert PurgeSchedule(sessions, 0).run_if_due() is None   # PURGE_INTERVAL_SECONDS=0 turns it off


def test_purge_command_prints_what_it_removed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    migrate(url)
    sessions = make_sessions(url)
    with sessions() as db, db.begin():
        _outbox(db, "old", "sent", datetime.now(UTC) - timedelta(days=100))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "app", "purge"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split() for line in done.stdout.splitlines())
    assert lines["outbox_events"] == "1" and lines["security_events"] == "0"
    assert _rows(sessions, OutboxEventRow) == []
