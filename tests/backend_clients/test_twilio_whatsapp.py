"""WhatsApp messages through the official Twilio SDK, against a fake of its API on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend_clients.twilio_whatsapp import TwilioWhatsApp
from dialogs.backends import BackendUnavailable, Rejected
from tests.support.fake_twilio import FakeTwilio, fake_twilio


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


def sender(fake: FakeTwilio, token: str | None = None) -> TwilioWhatsApp:
    return TwilioWhatsApp(fake.account_sid, token or fake.auth_token, "+14155238886", api_url=fake.url,
                          status_callback="https://engine.example/whatsapp/twilio/status")


def test_a_message_goes_to_the_whatsapp_address_of_the_number(twilio: FakeTwilio) -> None:
    sent = sender(twilio).send("+221770000001", "Votre reçu: 5 500 FCFA")
    assert sent.message_id.startswith("SM") and sent.status == "queued"
    [message] = twilio.sent
    assert message["To"] == "whatsapp:+221770000001" and message["From"] == "whatsapp:+14155238886"
    assert message["Body"] == "Votre reçu: 5 500 FCFA"
    assert message["StatusCallback"] == "https://engine.example/whatsapp/twilio/status"


def test_a_number_outside_whatsapp_is_refused_for_good(twilio: FakeTwilio) -> None:
    twilio.next_error = [(400, 63003, "Channel could not find To address")]
    with pytest.raises(Rejected) as refused:
        sender(twilio).send("+221770000001", "x")
    assert refused.value.reason == "twilio_63003"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_or_failing_twilio_is_worth_another_try(twilio: FakeTwilio, status: int) -> None:
    twilio.next_error = [(status, 20429 if status == 429 else 20500, "busy")]
    with pytest.raises(BackendUnavailable):
        sender(twilio).send("+221770000001", "x")
    assert twilio.sent == []


def test_wrong_credentials_are_refused(twilio: FakeTwilio) -> None:
    with pytest.raises(Rejected):
        sender(twilio, token="wrong").send("+221770000001", "x")


def test_an_unreachable_twilio_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        TwilioWhatsApp("AC" + "0" * 32, "t", "+14155238886", api_url="http://127.0.0.1:9", timeout=0.5).send(
            "+221770000001", "x")
