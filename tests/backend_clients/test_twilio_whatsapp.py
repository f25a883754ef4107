"""WhatsApp messages through the official Twilio SDK, against a fake of its API on loopback: free text, and
approved templates by their Content SID with their variables."""

from __future__ import annotations

import json
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


OUTAGE_SID = "HX" + "a1" * 16


def test_a_template_goes_by_its_content_sid_with_its_variables_and_no_body(twilio: FakeTwilio) -> None:
    sent = sender(twilio).send_template("+221770000001", OUTAGE_SID, ["DKR-PLATEAU", "vers\n18 h\t30", "  "])
    assert sent.message_id.startswith("SM") and sent.status == "queued"
    [message] = twilio.sent
    assert message["To"] == "whatsapp:+221770000001" and message["ContentSid"] == OUTAGE_SID
    assert "Body" not in message              # a template sent as a body is refused outside the window
    # WhatsApp takes no new line, tab or empty value in a parameter (Twilio refuses an empty one: 21656).
    assert json.loads(message["ContentVariables"]) == {"1": "DKR-PLATEAU", "2": "vers 18 h 30", "3": "-"}
    assert message["StatusCallback"] == "https://engine.example/whatsapp/twilio/status"


def test_free_text_twilio_refuses_at_once_outside_the_window_is_rejected_with_its_code(twilio: FakeTwilio) -> None:
    twilio.next_error = [(400, 63016, "Outside the allowed window")]
    with pytest.raises(Rejected) as refused:
        sender(twilio).send("+221770000001", "x")
    assert refused.value.reason == "twilio_63016"


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


def test_a_reply_goes_from_the_number_the_customer_wrote_to(twilio: FakeTwilio) -> None:
    sender(twilio).send("+221770000001", "Compte 1000001", from_number="+14155238899")
    [message] = twilio.sent
    assert message["From"] == "whatsapp:+14155238899" and message["To"] == "whatsapp:+221770000001"


def test_without_a_number_to_send_from_nothing_is_asked_of_twilio(twilio: FakeTwilio) -> None:
    no_default = TwilioWhatsApp(twilio.account_sid, twilio.auth_token, "", api_url=twilio.url)
    with pytest.raises(Rejected) as refused:
        no_default.send("+221770000001", "x")
    assert refused.value.reason == "twilio_no_sender_number" and twilio.sent == []
    no_default.send("+221770000001", "x", from_number="+14155238886")     # a reply knows its number
    assert [m["From"] for m in twilio.sent] == ["whatsapp:+14155238886"]
