"""A customer's WhatsApp 24-hour window shows on their page in the agents' console: per sender (Meta's number,
Twilio's), when they last wrote, whether the window is open and until when, and so whether an alert with a
template goes as free text or as the template. Through Twilio's webhook (signed as Twilio signs) into the
product's database, on the product's clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from app.factory import create_app
from app.settings import Settings
from tests.channels.whatsapp_phones import TwilioWhatsAppPhone, twilio_sending
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_twilio import FakeTwilio, fake_twilio

from .conftest import sign_in

AWA = "+221770000001"
WROTE = datetime(2026, 11, 26, 9, 15, 20, tzinfo=UTC)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


def window_section(client: FlaskClient, token: str) -> str:
    """The console's WhatsApp section of Awa's page, up to the next heading."""
    response = client.post("/console/lookup", data={"kind": "phone", "q": AWA, "csrf_token": token},
                           follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    start = page.index("<h3>WhatsApp</h3>")
    return page[start:page.index("<h3>", start + 4)]


@pytest.mark.parametrize("product_clock", [WROTE], indirect=True)
def test_an_agent_sees_whether_the_customer_s_whatsapp_window_is_open_and_until_when(
        agents_settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    app = create_app(twilio_sending(agents_settings, twilio, provider))
    agent = app.test_client()
    token = sign_in(agent, "Fatou", "agent")
    assert "has not written to us on WhatsApp" in window_section(agent, token)

    assert TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token).send("MENU")
    section = window_section(agent, token)
    assert "WhatsApp (Twilio)" in section and "2026-11-26 09:15 UTC" in section
    assert "open until 2026-11-27 09:15 UTC" in section
    assert "free text until 2026-11-27 08:45 UTC" in section

    product_clock.advance(hours=23, minutes=40)        # open still, past our margin: templates again
    section = window_section(agent, token)
    assert "open until 2026-11-27 09:15 UTC" in section and "the template" in section

    product_clock.advance(minutes=30)
    assert "closed since 2026-11-27 09:15 UTC" in window_section(agent, token)

