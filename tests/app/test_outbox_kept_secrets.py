"""How long a code sent on WhatsApp stays sealed in the outbox, against the providers' fakes on loopback:
until the provider's final word (delivered, failed for a reason SMS would not mend), and never past the
code's own validity when it ends before the hour (an SMS after it would carry a dead code)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.notify import Dispatcher, NotificationTemplates
from app.storage import SqlOutbox, make_sessions
from app.storage.delivery import SqlDeliveryQueue
from app.storage.outbox_seal import OutboxSeal
from app.whatsapp_letters import TwilioWhatsAppLetters, twilio_status_recorder
from backend_clients.africastalking_sms import AfricasTalkingSms
from backend_clients.twilio_whatsapp import TwilioWhatsApp
from channels.sms_delivery import DeliveryReport
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_twilio import FakeTwilio, fake_twilio

AWA = "+221770000001"
CODES = """
kinds:
  chat_code:
    urgent: true
    transactional: true
    valid_minutes: 10
    text: {fr: "Votre code: {code}", en: "Your code: {code}"}
"""


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))


@pytest.fixture
def dispatcher(tmp_path: Path, queue: SqlDeliveryQueue, seal: OutboxSeal, provider: FakeAfricasTalking,
               twilio: FakeTwilio, clock: SettableClock) -> Dispatcher:
    """WhatsApp through Twilio, SMS as the fallback, a code kind valid 10 minutes."""
    (tmp_path / "notifications.yaml").write_text(CODES, encoding="utf-8")
    whatsapp = TwilioWhatsApp(twilio.account_sid, twilio.auth_token, "+14155238886", api_url=twilio.url,
                              status_callback="https://elecnet.example.org/whatsapp/twilio/status")
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url, timeout=(0.5, 2))
    return Dispatcher(queue, NotificationTemplates.load(tmp_path / "notifications.yaml"),
                      {"whatsapp": TwilioWhatsAppLetters(whatsapp), "sms": sms}, seal=seal, clock=clock)


def code_on_whatsapp(engine_db: str, seal: OutboxSeal, clock: SettableClock) -> None:
    """A chat code queued now (the test's clock) for a customer on WhatsApp."""
    outbox = SqlOutbox(make_sessions(engine_db), seal, clock=clock)
    assert outbox.add(kind="chat_code", msisdn=AWA, language="fr", payload={"code": "482913"}, dedupe_key="c1",
                      channel="whatsapp")


def test_a_code_stays_sealed_no_longer_than_its_own_validity(dispatcher, engine_db, seal, queue, twilio, clock):
    code_on_whatsapp(engine_db, seal, clock)
    assert dispatcher.run_once().sent == 1
    assert [m["Body"] for m in twilio.sent] == ["Votre code: 482913"]
    clock.advance(minutes=9)
    assert dispatcher.run_once().erased == 0 and queue.get(1)["sealed"]
    clock.advance(minutes=1)                        # the code no longer works: nothing to send it again for
    assert dispatcher.run_once().erased == 1 and queue.get(1)["sealed"] is None


def test_a_failure_sms_would_not_mend_erases_the_code_at_once(dispatcher, engine_db, seal, queue, twilio, provider,
                                                             clock):
    code_on_whatsapp(engine_db, seal, clock)
    dispatcher.run_once()
    assert queue.get(1)["sealed"]
    record = twilio_status_recorder(queue)
    [message] = twilio.sent
    assert record(DeliveryReport(message["Sid"], AWA, "undelivered", "63003"))   # not a WhatsApp number
    row = queue.get(1)
    assert (row["status"], row["delivery_status"], row["sealed"]) == ("sent", "failed", None)
    assert dispatcher.run_once().sent == 0 and provider.sent == []
