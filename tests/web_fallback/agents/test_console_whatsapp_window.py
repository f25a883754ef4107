"""A customer's WhatsApp 24-hour window shows on their page in the agents' console: per sender (Meta's number,
Twilio's), when they last wrote, whether the window is open and until when, and so whether an alert with a
template goes as free text or as the template. Through Twilio's webhook (signed as Twilio signs) into the
product's database, on the product's clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import SqlConsent, SqlOutbox, make_sessions
from app.storage.contacts import SqlContacts
from app.storage.models import OutboxEventRow
from tests.channels.whatsapp_phones import TwilioWhatsAppPhone, twilio_reports, twilio_sending
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



# --- "Send again" decides afresh by the window at the time of the resend ---------------------------------------

OUTAGE_FR = "HX" + "0f" * 16
OUTAGE_TEXT_FR = ("ElecNet: coupure de courant dans la zone DKR-PLATEAU. Nos équipes sont sur place. "
                  "Veuillez nous excuser pour le désagrément.")


def test_an_agent_s_send_again_inside_the_window_goes_as_free_text_whatever_the_failed_send_was(
        agents_settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking) -> None:
    """Awa wrote, so the outage alert went as free text; WhatsApp said the window was closed after all, so it went
    again as its template, which WhatsApp then could not deliver either. Awa writes again the next day and an agent
    presses "Send again": her window is open, so the alert goes as its free text, not as the template the failed
    send ended with."""
    settings = replace(twilio_sending(agents_settings, twilio, provider),
                       twilio_content_sids=(("outage_declared", "fr", OUTAGE_FR),))
    app = create_app(settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    sessions = make_sessions(settings.database_url)
    SqlContacts(sessions).set_channel(AWA, "whatsapp", via="ussd", source="menu")
    SqlConsent(sessions).opt_in(AWA, "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
    assert awa.send("MENU")
    assert SqlOutbox(sessions).add(kind="outage_declared", msisdn=AWA, language="fr", dedupe_key="outage:1",
                                   payload={"zone": "DKR-PLATEAU", "no_eta": True})
    twilio.window_closed.add(AWA)                       # closed after all, for WhatsApp
    assert worker.run_once(settings).get("notifications_sent") == 1
    status = app.test_client()
    assert twilio_reports(status, twilio) == [204]     # the free text: undelivered, 63016
    assert worker.run_once(settings).get("notifications_sent") == 1
    text, template = twilio.sent
    assert text["Body"] == OUTAGE_TEXT_FR and template["ContentSid"] == OUTAGE_FR
    [(url, form)] = twilio.callbacks                  # the template could not be delivered either (unknown error)
    twilio.callbacks[:] = [(url, {**form, "MessageStatus": "undelivered", "SmsStatus": "undelivered",
                                  "ErrorCode": "30008"})]
    assert twilio_reports(status, twilio) == [204]

    twilio.window_closed.discard(AWA)
    assert awa.send("MENU")                            # Awa writes again: her window is open
    agent = app.test_client()
    token = sign_in(agent, "Fatou", "agent")
    assert "open until" in window_section(agent, token)    # the agent opens Awa's file: her window is open
    with sessions() as db:
        alert = db.scalars(select(OutboxEventRow.id).where(OutboxEventRow.kind == "outage_declared")).one()
    page = agent.post("/console/resend", data={"csrf_token": token, "notification": str(alert)},
                      follow_redirects=True).get_data(as_text=True)
    assert "Notification queued again." in page
    assert worker.run_once(settings).get("notifications_sent") == 1
    again = twilio.sent[-1]
    assert again["Body"] == OUTAGE_TEXT_FR and "ContentSid" not in again
    assert provider.sent == []
