"""A prepaid token sent on WhatsApp is kept sealed until its delivery is final, so that a late "outside the
24-hour window" (Meta 131047 in a status event, Twilio 63016 in a status callback) still brings it by SMS,
exactly once; delivered, or an hour after the send (``OUTBOX_KEEP_SENT_SECRETS_MINUTES``) with no such
status, it is erased. Never in clear in the database, never in a log line. Providers faked on loopback
(Graph API, Twilio's Messages API, Africa's Talking SMS); statuses posted to the product signed as each
provider signs them; the worker's clock moved by the test."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import SqlOutbox, make_sessions
from app.storage.contacts import SqlContacts
from app.storage.delivery import SqlDeliveryQueue
from app.storage.outbox_seal import OutboxSeal
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph
from tests.support.fake_twilio import FakeTwilio
from tests.support.outbox_rows import raw_rows

from .whatsapp_phones import PHONE_NUMBER_ID, MetaWhatsAppPhone, twilio_reports, twilio_sending

PREPAID = "+221770000003"
TOKEN = "48213907561284730195"
GROUPED = "4821 3907 5612 8473 0195"   # as the receipt prints it
RECEIPT_FR = ("ElecNet: achat de 2 000 FCFA, compteur du compte 3000001. Code à saisir au compteur: "
              f"{GROUPED}. Réf. MM1.")
SECRET_KEY = "test-secret-key-for-the-seal"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))


@pytest.fixture
def meta(wa_settings: Settings, provider: FakeAfricasTalking, clock: SettableClock) -> Settings:
    """WhatsApp notifications through Meta, SMS through its fake, one seal key for the product and the worker."""
    return replace(wa_settings, meta_phone_number_id=PHONE_NUMBER_ID, at_api_key=provider.api_key,
                   at_username=provider.username, at_api_url=provider.url, quiet_hours="", secret_key=SECRET_KEY,
                   clock=clock)


@pytest.fixture
def twilio_settings(settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
                    clock: SettableClock) -> Settings:
    """WhatsApp notifications through Twilio, SMS through its fake, one seal key, the test's clock."""
    return replace(twilio_sending(settings, twilio, provider), secret_key=SECRET_KEY, clock=clock)


@pytest.fixture
def handset(meta: Settings, graph: FakeGraph) -> MetaWhatsAppPhone:
    """The prepaid customer's WhatsApp, to which Meta's status events about our messages refer."""
    return MetaWhatsAppPhone(create_app(meta).test_client(), graph, PREPAID)


def token_receipt_on_whatsapp(settings: Settings) -> SqlDeliveryQueue:
    """A prepaid purchase's receipt queued for a customer who chose WhatsApp, its token sealed."""
    sessions = make_sessions(settings.database_url)
    SqlContacts(sessions).set_channel(PREPAID, "whatsapp", via="ussd", source="menu")
    outbox = SqlOutbox(sessions, OutboxSeal.from_setting("", SECRET_KEY), clock=settings.clock)
    assert outbox.add(kind="payment_receipt", msisdn=PREPAID, language="fr", dedupe_key="payment:P1",
                      payload={"payment_id": "P1", "reference": "MM1", "amount": "2000", "account_number": "3000001",
                               "purpose": "prepaid", "token": TOKEN, "failure_reason": None})
    return SqlDeliveryQueue(sessions)


def test_meta_reporting_the_window_closed_after_taking_the_receipt_brings_the_token_by_sms_once(
        meta, graph, provider, handset, caplog):
    caplog.set_level(logging.DEBUG)
    queue = token_receipt_on_whatsapp(meta)
    assert worker.run_once(meta).get("notifications_sent") == 1
    [receipt] = graph.messages_to(PREPAID.lstrip("+"))
    assert receipt["text"]["body"] == RECEIPT_FR                    # Meta took it (200) ...
    assert queue.get(1)["sealed"] and TOKEN not in raw_rows(meta.database_url)   # kept, sealed, for now

    assert handset.status(receipt["id"], "failed", 131047) == 200   # ... then could not deliver it
    assert worker.run_once(meta).get("notifications_sent") == 1
    assert provider.messages_to(PREPAID) == [RECEIPT_FR]
    assert queue.get(1)["sealed"] is None                           # sent by SMS: erased

    assert handset.status(receipt["id"], "failed", 131047) == 200   # Meta delivers the event again
    assert worker.run_once(meta).get("notifications_sent") is None
    assert len(provider.sent) == 1 and len(graph.sent) == 1
    assert TOKEN not in caplog.text and GROUPED not in caplog.text


def test_twilio_reporting_the_window_closed_in_its_status_callback_brings_the_token_by_sms_once(
        twilio_settings, twilio, provider, caplog):
    caplog.set_level(logging.DEBUG)
    twilio.window_closed.add(PREPAID)
    queue = token_receipt_on_whatsapp(twilio_settings)
    assert worker.run_once(twilio_settings).get("notifications_sent") == 1
    assert [m["Body"] for m in twilio.sent] == [RECEIPT_FR]
    assert queue.get(1)["sealed"]
    callbacks = list(twilio.callbacks)                              # undelivered, 63016
    client = create_app(twilio_settings).test_client()
    assert twilio_reports(client, twilio) == [204]
    assert worker.run_once(twilio_settings).get("notifications_sent") == 1
    assert provider.messages_to(PREPAID) == [RECEIPT_FR]
    assert queue.get(1)["sealed"] is None

    twilio.callbacks.extend(callbacks)                              # the same callback again
    assert twilio_reports(client, twilio) == [204]
    assert worker.run_once(twilio_settings).get("notifications_sent") is None
    assert len(provider.sent) == 1 and len(twilio.sent) == 1
    assert TOKEN not in caplog.text and GROUPED not in caplog.text


def test_a_token_delivered_on_whatsapp_is_erased_at_once(meta, graph, provider, handset):
    queue = token_receipt_on_whatsapp(meta)
    worker.run_once(meta)
    [receipt] = graph.messages_to(PREPAID.lstrip("+"))
    assert queue.get(1)["sealed"]
    assert handset.status(receipt["id"], "delivered") == 200
    assert queue.get(1)["sealed"] is None and queue.get(1)["delivery_status"] == "delivered"
    assert provider.sent == []


def test_a_kept_token_is_erased_an_hour_after_the_send_and_a_later_failure_cannot_resend_it(
        meta, graph, provider, handset, clock):
    queue = token_receipt_on_whatsapp(meta)
    worker.run_once(meta)
    [receipt] = graph.messages_to(PREPAID.lstrip("+"))
    clock.advance(minutes=59)
    worker.run_once(meta)
    assert queue.get(1)["sealed"]                                   # still within the hour
    clock.advance(minutes=1)
    worker.run_once(meta)
    assert queue.get(1)["sealed"] is None                           # no final word in an hour: erased

    assert handset.status(receipt["id"], "failed", 131047) == 200
    assert worker.run_once(meta).get("notifications_failed") == 1
    assert provider.sent == []                                      # no SMS without its token
    row = queue.get(1)
    assert row["status"] == "failed" and row["last_error"].startswith(
        "not sent: its prepaid token was erased after a first send; the customer reads it again")


def test_the_bound_is_the_operator_s(meta, graph, clock):
    five_minutes = replace(meta, outbox_keep_sent_secrets_minutes=5)
    queue = token_receipt_on_whatsapp(five_minutes)
    worker.run_once(five_minutes)
    clock.advance(minutes=4)
    worker.run_once(five_minutes)
    assert queue.get(1)["sealed"]
    clock.advance(minutes=1)
    worker.run_once(five_minutes)
    assert queue.get(1)["sealed"] is None
