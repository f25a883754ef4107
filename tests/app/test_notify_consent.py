"""What may be sent, when and how fast: consent per topic with its history, STOP on every queued
message (receipts and tokens still go), quiet hours that hold bulk messages until morning, and a
provider's send rate shared by two workers through Redis."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import text

from app.notify import Dispatcher, NotificationTemplates
from app.pace import RedisPace
from app.quiet_hours import QuietHours
from app.storage import SqlConsent, SqlOutbox, make_sessions, migrate
from app.storage.delivery import SqlDeliveryQueue
from backend_clients.africastalking_sms import AfricasTalkingSms
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking

TEMPLATES = NotificationTemplates.load("config/notifications.yaml")
ALICE, BOB = "+221770000001", "+221770000002"
RECEIPT = {"payment_id": "PAY-1", "reference": "MM123456", "amount": "5500", "account_number": "1000001",
           "purpose": "bill", "token": None}
BILL = {"account_number": "1000001", "amount": "12500", "due_date": "2026-12-15"}




@pytest.fixture
def sms(provider: FakeAfricasTalking) -> AfricasTalkingSms:
    return AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url, timeout=(0.5, 2))


@pytest.fixture
def consent(engine_db: str) -> SqlConsent:
    return SqlConsent(make_sessions(engine_db))


def add(outbox: SqlOutbox, kind: str, key: str, msisdn: str = ALICE, **payload: Any) -> None:
    base = RECEIPT if kind.startswith("payment") else BILL
    assert outbox.add(kind=kind, msisdn=msisdn, language="fr", payload={**base, **payload}, dedupe_key=key)


def status_of(queue: SqlDeliveryQueue, row_id: int) -> tuple[str, str | None]:
    row = queue.get(row_id)
    return row["status"], row["last_error"]


# ------------------------------------------------------------------ consent
def test_every_consent_change_is_recorded_with_time_channel_and_source(consent):
    consent.opt_in(ALICE, "bill_issued", "1000001", channel="ussd", source="menu")
    consent.subscribe(ALICE, "power_back", "DKR-01")          # the "SMS me when power is back" path
    consent.opt_out(ALICE, "bill_issued", "1000001", channel="web", source="preferences page")
    assert [(s.topic, s.scope) for s in consent.for_user(ALICE)] == [("power_back", "DKR-01")]
    assert consent.stop_all(ALICE, channel="sms", source="keyword STOP") == 1
    assert consent.for_user(ALICE) == [] and consent.is_stopped(ALICE)
    consent.start(ALICE, channel="sms", source="keyword START")
    history = consent.history(ALICE)
    # Where it was said, and (an opt-in) where its alerts go; the bare subscription does not know the first.
    assert [(c.action, c.topic, c.channel, c.source, c.delivery) for c in history] == [
        ("opt_in", "bill_issued", "ussd", "menu", "sms"),
        ("opt_in", "power_back", "", "self-service", "sms"),
        ("opt_out", "bill_issued", "web", "preferences page", ""),
        ("stop", "", "sms", "keyword STOP", ""),
        ("start", "", "sms", "keyword START", ""),
    ]
    assert all(c.at is not None for c in history)
    assert not consent.is_stopped(ALICE) and consent.history(BOB) == []


def test_asking_for_an_alert_after_stop_is_consent_again(consent):
    consent.stop_all(ALICE, channel="sms", source="keyword STOP")
    consent.opt_in(ALICE, "power_back", "DKR-01", channel="ussd", source="menu")
    assert not consent.is_stopped(ALICE)


# ------------------------------------------------------------------ STOP
def test_stop_suppresses_queued_messages_at_once_but_receipts_still_go(outbox, queue, consent, sms, provider):
    dispatcher = Dispatcher(queue, TEMPLATES, {"sms": sms}, stops=consent)
    add(outbox, "bill_issued", "bill:1")
    add(outbox, "power_restored", "zone:1", zone="DKR-01")
    add(outbox, "payment_receipt", "pay:1")
    add(outbox, "bill_issued", "bill:2", msisdn=BOB)
    consent.stop_all(ALICE, channel="sms", source="keyword STOP")
    result = dispatcher.run_once()
    assert (result.sent, result.suppressed) == (2, 2)
    assert provider.messages_to(ALICE) == [
        "ElecNet: paiement de 5 500 FCFA confirmé pour le compte 1000001. Réf. MM123456. Merci."]
    assert len(provider.messages_to(BOB)) == 1
    assert status_of(queue, 1) == ("suppressed", "suppressed: the customer sent STOP")
    assert status_of(queue, 2)[0] == "suppressed"
    consent.start(ALICE, channel="sms", source="keyword START")
    assert dispatcher.run_once().sent == 0          # a suppressed message is never sent later
    assert len(provider.messages_to(ALICE)) == 1


# ------------------------------------------------------------------ quiet hours
def test_quiet_hours_hold_bulk_messages_until_morning_and_let_urgent_ones_through(outbox, queue, sms, provider, seal):
    night = SettableClock(datetime(2026, 11, 26, 22, 30, tzinfo=UTC))      # Dakar is UTC+0
    dispatcher = Dispatcher(queue, TEMPLATES, {"sms": sms}, clock=night, quiet=QuietHours.parse("21-7"), seal=seal)
    add(outbox, "bill_issued", "bill:1")
    add(outbox, "payment_receipt", "pay:1", purpose="prepaid", token="1234-5678-9012-3456-7890")
    add(outbox, "outage_declared", "zone:1", zone="DKR-01", no_eta=True)
    assert dispatcher.run_once().sent == 2
    token, outage = provider.messages_to(ALICE)
    assert token.startswith("ElecNet: achat de 5 500 FCFA") and outage == (
        "ElecNet: coupure de courant dans la zone DKR-01. Nos équipes sont sur place. Veuillez nous excuser pour le désagrément.")
    assert status_of(queue, 1) == ("pending", None)                  # held, not dropped
    night.now = datetime(2026, 11, 27, 6, 59, tzinfo=UTC)
    assert dispatcher.run_once().sent == 0
    night.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert dispatcher.run_once().sent == 1
    assert provider.messages_to(ALICE)[-1] == (
        "ElecNet: nouvelle facture pour le compte 1000001: 12 500 FCFA, à payer avant le 15/12/2026. Payez par *123#.")


def test_quiet_hours_are_local_time_and_configurable():
    quiet = QuietHours.parse("22:30-06:00", "Africa/Lagos")          # UTC+1
    assert quiet is not None and QuietHours.parse("") is None
    assert not quiet.active(datetime(2026, 11, 26, 21, 15, tzinfo=UTC))   # 22:15 in Lagos
    assert quiet.active(datetime(2026, 11, 26, 21, 45, tzinfo=UTC))       # 22:45 in Lagos
    assert quiet.ends_at(datetime(2026, 11, 26, 21, 45, tzinfo=UTC)) == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        QuietHours.parse("night")


# ------------------------------------------------------------------ pace
@dataclass
class TimedSms:
    """The real SDK client, noting when each message left (to check the rate)."""

    inner: AfricasTalkingSms
    times: list[float]

    def send(self, to: str, text: str) -> Any:
        self.times.append(time.monotonic())
        return self.inner.send(to, text)


@pytest.mark.postgres
def test_two_workers_share_the_providers_rate_through_redis(postgres_url: str, redis_url: str,
                                                            sms: AfricasTalkingSms,
                                                            provider: FakeAfricasTalking) -> None:
    migrate(postgres_url)
    outbox = SqlOutbox(make_sessions(postgres_url))
    for n in range(30):
        add(outbox, "bill_issued", f"bill:{n}", msisdn=f"+2217700{n:05d}")
    times: list[float] = []
    rate = 20.0

    def worker() -> None:
        pace = RedisPace(redis.Redis.from_url(redis_url), {"africastalking": rate})
        dispatcher = Dispatcher(SqlDeliveryQueue(make_sessions(postgres_url)), TEMPLATES,
                                {"sms": TimedSms(sms, times)}, pace=pace)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(provider.sent) < 30:
            dispatcher.run_once(limit=10)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(provider.sent) == 30 and len({m.to for m in provider.sent}) == 30
    times.sort()
    # 30 messages at 20/s: the first goes at once, the last no sooner than 29 intervals later.
    assert times[-1] - times[0] >= 29 / rate - 0.05
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= rate + 1, f"{busiest} messages left within one second at {rate}/s"


def test_urgent_messages_overtake_a_paced_bulk_run(engine_db, redis_url, outbox, queue, sms, provider):
    for n in range(20):
        add(outbox, "bill_issued", f"bill:{n}", msisdn=f"+2217700{n:05d}")
    pace = RedisPace(redis.Redis.from_url(redis_url), {"africastalking": 5})
    dispatcher = Dispatcher(queue, TEMPLATES, {"sms": sms}, pace=pace, max_pace_wait=0.1)
    first = dispatcher.run_once(limit=10)
    assert first.sent >= 1 and first.paced >= 1        # the rate gave the rest of the batch back
    assert queue.get(20)["attempts"] == 0                # given back, not counted as an attempt
    add(outbox, "payment_receipt", "pay:1", msisdn=BOB)
    while not provider.messages_to(BOB):
        dispatcher.run_once(limit=10)
    assert len(provider.sent) < 20, "the receipt waited for the whole bulk run"


# ------------------------------------------------------------------ crash recovery on SQLite
def test_a_report_in_the_same_second_as_the_claim_still_proves_the_send(outbox, queue, engine_db):
    """SQLite stamps ``received_at`` with CURRENT_TIMESTAMP (whole seconds, compared as text): a report
    arriving in the very second of the claim (a fast provider) must still be adopted, or the message
    would be sent twice."""
    add(outbox, "payment_receipt", "pay:1")
    claimed_at = datetime(2026, 11, 26, 10, 0, 0, 700_000, tzinfo=UTC)
    [message] = queue.claim(claimed_at, timedelta(seconds=60))
    queue.record_report(provider="africastalking", message_id="ATXid_1", msisdn=ALICE, status="Success")
    with make_sessions(engine_db).begin() as db:      # what SQLite's CURRENT_TIMESTAMP writes: whole seconds
        db.execute(text("UPDATE delivery_reports SET received_at = '2026-11-26 10:00:00'"))
    adopted, requeued = queue.recover(claimed_at + timedelta(minutes=2), timedelta(seconds=60), timedelta(minutes=10))
    assert (adopted, requeued) == (1, 0)
    assert queue.get(message.id)["provider_message_id"] == "ATXid_1"
