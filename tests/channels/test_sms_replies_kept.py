"""No SMS conversation is lost: a reply the SMS API could not take at once reaches the customer through
the outbox and the worker, once, however often Africa's Talking posts the message again; its text is
sealed in the outbox row; with no SMS account at all it waits there, for its validity (30 minutes) at most:
older, it is out of date and marked expired instead of sent. Against the fake Africa's Talking
SMS API on loopback, the real back office, Redis and the product's database."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import make_sessions, migrate
from app.storage.agent_console import SqlCustomerRecords
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.outbox_rows import raw_rows

from .sms_phone import SmsPhone

AWA = "+221770000001"
MOUSSA = "+221770000003"
BALANCE = "Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures"
TOKEN = "48213907561284730195"        # the prepaid meter's last purchase (the back office's demo data)
GROUPED = "4821 3907 5612 8473 0195"   # as the screens and receipts print it


def _notifications(settings: Settings, app, msisdn: str) -> list[dict[str, str]]:
    """What the agents' console lists for the number."""
    parts = app.extensions["parts"]
    console = SqlCustomerRecords(make_sessions(settings.database_url), parts["security"], parts["deps"].identity)
    return [{k: n[k] for k in ("kind", "channel", "status", "delivery")} for n in console.file(msisdn).notifications]


def test_a_reply_the_provider_could_not_take_reaches_the_customer_through_the_worker(
        texter, fake_at: FakeAfricasTalking, sms_settings: Settings, sms_app) -> None:
    awa: SmsPhone = texter(AWA)
    fake_at.fail_next = 1                         # the SMS API answers 500 to the reply
    assert awa.send("SOLDE") == []
    assert awa.last_status == 200                 # taken: the provider need not post it again
    assert _notifications(sms_settings, sms_app, AWA) == [
        {"kind": "sms_reply", "channel": "sms", "status": "pending", "delivery": "-"}]
    assert worker.run_once(sms_settings)["notifications_sent"] == 1
    assert fake_at.messages_to(AWA) == [BALANCE]
    # The provider's delivery report lands on it like on any other message.
    report = {"id": fake_at.sent[0].message_id, "status": "Success", "phoneNumber": AWA, "networkCode": "99999"}
    assert sms_app.test_client().post("/sms/africastalking/delivery", data=report).status_code == 200
    assert _notifications(sms_settings, sms_app, AWA) == [
        {"kind": "sms_reply", "channel": "sms", "status": "sent", "delivery": "delivered"}]
    # The conversation goes on from the reply the customer read.
    assert awa.say("1").startswith("Factures (choisissez):\n1. novembre 2026 5 500 FCFA impayée\n")


def test_the_provider_posting_the_message_again_gets_no_second_reply(
        texter, fake_at: FakeAfricasTalking, sms_settings: Settings) -> None:
    awa: SmsPhone = texter(AWA)
    fake_at.fail_next = 1
    assert awa.send("SOLDE") == []
    first = awa.last_id
    assert awa.send("SOLDE", message_id=first) == [] and awa.last_status == 200
    worker.run_once(sms_settings)
    assert awa.send("SOLDE", message_id=first) == []
    worker.run_once(sms_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]


def test_a_reply_neither_sent_nor_queued_is_asked_again_of_the_provider_and_sent_once(
        texter, fake_at: FakeAfricasTalking, sms_settings: Settings) -> None:
    awa: SmsPhone = texter(AWA)
    database = create_engine(sms_settings.database_url)
    with database.begin() as db:                  # the outbox cannot be written either
        db.execute(text("ALTER TABLE outbox_events RENAME TO outbox_events_away"))
    fake_at.fail_next = 1
    assert awa.send("SOLDE") == []
    assert awa.last_status == 503                 # not a 4xx: Africa's Talking posts it again
    with database.begin() as db:
        db.execute(text("ALTER TABLE outbox_events_away RENAME TO outbox_events"))
    database.dispose()
    assert awa.send("SOLDE", message_id=awa.last_id) == [BALANCE] and awa.last_status == 200
    assert awa.send("SOLDE", message_id=awa.last_id) == [] and awa.last_status == 200
    worker.run_once(sms_settings)
    assert fake_at.messages_to(AWA) == [BALANCE]


def test_a_reply_showing_a_prepaid_token_is_sealed_in_the_outbox_and_erased_once_sent(
        texter, fake_at: FakeAfricasTalking, sms_settings: Settings) -> None:
    moussa: SmsPhone = texter(MOUSSA)
    fake_at.fail_next = 1
    assert moussa.send("SOLDE") == []
    rows = raw_rows(sms_settings.database_url)
    assert '"sealed": ["reply"]' in rows
    assert TOKEN not in rows and GROUPED not in rows and "Prépayé" not in rows
    worker.run_once(sms_settings)
    [reply] = fake_at.messages_to(MOUSSA)
    assert reply.startswith("Prépayé 3000001\n") and f"Code: {GROUPED}" in reply
    assert GROUPED not in raw_rows(sms_settings.database_url)


def test_without_an_sms_account_the_reply_waits_in_the_outbox_until_there_is_one(
        settings: Settings, fake_at: FakeAfricasTalking, sms_settings: Settings) -> None:
    unconfigured = create_app(replace(settings, at_api_key=""))
    awa = SmsPhone(unconfigured.test_client(), fake_at, AWA)
    assert awa.send("SOLDE") == [] and awa.last_status == 200
    assert worker.run_once(replace(settings, at_api_key="")).get("notifications_sent") is None
    worker.run_once(sms_settings)                 # AT_API_KEY set: the worker sends what waited
    assert fake_at.messages_to(AWA) == [BALANCE]


def test_on_postgres_a_reply_to_a_message_with_the_longest_id_the_provider_may_send_is_queued_too(
        sms_settings: Settings, fake_at: FakeAfricasTalking, postgres_url: str) -> None:
    migrate(postgres_url)
    on_postgres = replace(sms_settings, database_url=postgres_url)
    awa = SmsPhone(create_app(on_postgres).test_client(), fake_at, AWA)
    fake_at.fail_next = 1
    longest = "ATXid_" + "7" * 122                # 128 characters: the longest id the callback takes
    assert awa.send("SOLDE", message_id=longest) == [] and awa.last_status == 200
    assert awa.send("SOLDE", message_id=longest) == [] and awa.last_status == 200
    worker.run_once(on_postgres)
    assert fake_at.messages_to(AWA) == [BALANCE]


def test_two_retries_of_an_owed_reply_arriving_together_send_it_once(
        sms_app, fake_at: FakeAfricasTalking, sms_settings: Settings) -> None:
    awa = SmsPhone(sms_app.test_client(), fake_at, AWA)
    database = create_engine(sms_settings.database_url)
    with database.begin() as db:                  # neither sent nor queued: owed to the provider's retry
        db.execute(text("ALTER TABLE outbox_events RENAME TO outbox_events_away"))
    fake_at.fail_next = 1
    assert awa.send("SOLDE") == [] and awa.last_status == 503
    with database.begin() as db:
        db.execute(text("ALTER TABLE outbox_events_away RENAME TO outbox_events"))
    database.dispose()
    owed_id = awa.last_id

    # The provider posts it again twice at the same moment: the first retry is still sending the reply
    # (the SMS API holds its answer) when the second arrives.
    fake_at.hold = threading.Event()
    statuses: list[int] = []

    def retry() -> None:
        phone = SmsPhone(sms_app.test_client(), fake_at, AWA)
        phone.send("SOLDE", message_id=owed_id)
        statuses.append(phone.last_status)

    first = threading.Thread(target=retry)
    first.start()
    deadline = time.monotonic() + 10
    while not fake_at.messages_to(AWA) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = threading.Thread(target=retry)
    second.start()
    second.join(timeout=3)                        # answered without waiting for the first one's send
    fake_at.hold.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert fake_at.messages_to(AWA) == [BALANCE]
    assert sorted(statuses) == [200, 200]
    assert awa.send("SOLDE", message_id=owed_id) == [] and awa.last_status == 200   # settled: never again


@pytest.mark.parametrize("product_clock", [datetime(2026, 11, 26, 9, 0, tzinfo=UTC)], indirect=True)
def test_a_queued_reply_older_than_its_validity_is_marked_expired_never_sent(
        settings: Settings, fake_at: FakeAfricasTalking, sms_settings: Settings, product_clock: SettableClock) -> None:
    unconfigured = create_app(replace(settings, at_api_key=""))
    awa, moussa = SmsPhone(unconfigured.test_client(), fake_at, AWA), SmsPhone(unconfigured.test_client(), fake_at,
                                                                             MOUSSA)
    assert awa.send("SOLDE") == [] and awa.last_status == 200        # no SMS account: queued
    product_clock.advance(minutes=29)
    assert moussa.send("SOLDE") == []
    product_clock.advance(minutes=2)      # Awa's reply is 31 minutes old, Moussa's 2 (validity: 30 minutes)
    done = worker.run_once(sms_settings)
    assert done["notifications_sent"] == 1 and done["notifications_expired"] == 1
    assert fake_at.messages_to(AWA) == [] and len(fake_at.messages_to(MOUSSA)) == 1
    assert _notifications(sms_settings, unconfigured, AWA) == [
        {"kind": "sms_reply", "channel": "sms", "status": "expired", "delivery": "-"}]
    # Kept for agents with the reason; its text (sealed) erased, and never sent by a later pass either.
    parts = unconfigured.extensions["parts"]
    console = SqlCustomerRecords(make_sessions(sms_settings.database_url), parts["security"], parts["deps"].identity)
    [row] = console.file(AWA).notifications
    assert row["error"] == "expired: out of date after 30 minutes in the outbox"
    assert "Compte 1000001" not in raw_rows(sms_settings.database_url)
    product_clock.advance(minutes=1)
    assert worker.run_once(sms_settings).get("notifications_sent") is None
    assert fake_at.messages_to(AWA) == []
