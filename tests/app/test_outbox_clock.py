"""The outbox keeps the product's time (``Settings.clock``, wired by the factory), not the wall clock:
a message is stamped queued, tried again and sent on it, a delivery report on arrival too; so a worker
killed after the provider took a message adopts the provider's report and never sends it twice, even when
the product's clock is not the wall clock (here: the first of March 2027)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.factory import build_dispatcher, create_app
from app.settings import Settings
from app.storage import make_sessions
from app.storage.delivery import SqlDeliveryQueue
from app.storage.models import DeliveryReportRow, OutboxEventRow
from backend_clients.africastalking_sms import AfricasTalkingSms
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking

START = datetime(2027, 3, 1, 0, 0, tzinfo=UTC)
AWA = "+221770000001"
RECEIPT = {"payment_id": "PAY-1", "reference": "MM123456", "amount": "5500", "account_number": "1000001",
           "purpose": "bill", "token": None}

pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)


@pytest.fixture
def wired(settings: Settings, provider: FakeAfricasTalking) -> Settings:
    return replace(settings, at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   quiet_hours="", ussd_gateway_token="report-token")


@pytest.fixture
def engine_app(wired: Settings) -> Flask:
    return create_app(wired)


def queue_receipt(app: Flask) -> None:
    """The receipt a confirmed payment queues (the factory's outbox, as the dialogs use it)."""
    assert app.extensions["parts"]["deps"].outbox.add(kind="payment_receipt", msisdn=AWA, language="fr",
                                                      payload=RECEIPT, dedupe_key="receipt:PAY-1")


def stamps(settings: Settings) -> dict[str, Any]:
    with make_sessions(settings.database_url)() as db:
        row = db.scalars(select(OutboxEventRow)).one()
        reports = list(db.scalars(select(DeliveryReportRow.received_at)))
    return {"queued": row.created_at, "next try": row.next_attempt_at, "sent": row.sent_at, "reports": reports}


def aware(moment: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back: they were written in UTC.
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def report(app: Flask, message_id: str, status: str) -> None:
    answer = app.test_client().post("/sms/africastalking/delivery?token=report-token", data={
        "id": message_id, "status": status, "phoneNumber": AWA, "networkCode": "60801", "retryCount": "0"})
    assert answer.status_code == 200


def test_queued_next_try_sent_and_report_are_stamped_on_the_product_clock(
        engine_app: Flask, wired: Settings, provider: FakeAfricasTalking, product_clock: SettableClock) -> None:
    queue_receipt(engine_app)
    provider.fail_next = 1                                   # the provider is busy once
    dispatcher = build_dispatcher(wired, make_sessions(wired.database_url))
    assert dispatcher.run_once().retried == 1
    product_clock.advance(seconds=5)
    assert dispatcher.run_once().sent == 1
    product_clock.advance(seconds=3)
    report(engine_app, provider.sent[0].message_id, "Success")
    found = stamps(wired)
    assert {name: [aware(m) for m in value] if name == "reports" else aware(value)
            for name, value in found.items()} == {
        "queued": START, "next try": START + timedelta(seconds=5), "sent": START + timedelta(seconds=5),
        "reports": [START + timedelta(seconds=8)]}


def test_a_worker_killed_after_the_provider_took_the_message_never_sends_it_twice(
        engine_app: Flask, wired: Settings, provider: FakeAfricasTalking, product_clock: SettableClock) -> None:
    queue_receipt(engine_app)
    sessions = make_sessions(wired.database_url)
    # A worker claims the row and hands the message to the provider, then dies before recording it.
    [claimed] = SqlDeliveryQueue(sessions, clock=product_clock).claim(product_clock(), timedelta(seconds=60))
    AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url).send(AWA, "receipt")
    product_clock.advance(seconds=2)
    report(engine_app, provider.sent[0].message_id, "Success")   # the provider's report arrives
    product_clock.advance(minutes=2)                              # past the dead worker's claim
    outcome = build_dispatcher(wired, sessions).run_once()
    assert (outcome.adopted, outcome.sent, outcome.requeued) == (1, 0, 0)
    product_clock.advance(minutes=15)                             # long after: still never sent again
    assert build_dispatcher(wired, sessions).run_once().sent == 0
    assert len(provider.sent) == 1
    row = SqlDeliveryQueue(sessions).get(claimed.id)
    assert (row["status"], row["delivery_status"]) == ("sent", "delivered")
