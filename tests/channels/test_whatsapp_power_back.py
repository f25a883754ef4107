"""A promise made on WhatsApp is kept on WhatsApp: a customer who asks, in a WhatsApp conversation, to be
told when power is back is told there once an agent restores the zone in the back office and the worker
runs (Twilio's Messages API faked on loopback, the SMS provider too, to see nothing goes by SMS). A choice
the customer made for their messages (SMS, e-mail) still wins over the conversation's channel."""

from __future__ import annotations

import pytest
import requests
from flask import Flask

from app import worker
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_twilio import FakeTwilio

from .whatsapp_phones import TwilioWhatsAppPhone, twilio_sending

SAHEL = "+221770000002"     # English, several accounts; 2000002 is in THIES-NORD, where an outage is known
NAV_EN = "0. Back 00. Home"
POWER_BACK_EN = "ElecNet: power is back in zone THIES-NORD. Thank you for your patience."


@pytest.fixture
def settings(settings: Settings, provider: FakeAfricasTalking, twilio: FakeTwilio) -> Settings:
    return twilio_sending(settings, twilio, provider)


@pytest.fixture
def handset(app: Flask, twilio: FakeTwilio) -> TwilioWhatsAppPhone:
    return TwilioWhatsAppPhone(app.test_client(), SAHEL, token=twilio.auth_token)


def ask_for_the_power_back_alert(sahel: TwilioWhatsAppPhone) -> str:
    sahel.say("Hello")
    sahel.say("2")                                      # account 2000002
    sahel.say("4")
    assert sahel.say("1").startswith("An outage is already known in your area (THIES-NORD)")
    return sahel.say("1")


def test_asked_on_whatsapp_the_power_back_alert_comes_on_whatsapp(handset, app, settings, backoffice_url,
                                                                 twilio, provider):
    assert ask_for_the_power_back_alert(handset) == (
        f"You will be told by WhatsApp when power is back in your area (THIES-NORD).\n{NAV_EN}")
    subscriptions = app.extensions["parts"]["deps"].subscriptions.for_user(SAHEL)
    assert [(s.topic, s.channel) for s in subscriptions] == [("power_back", "whatsapp")]
    assert worker.run_once(settings).get("notifications_sent", 0) == 0     # the power is still off

    requests.post(f"{backoffice_url}/api/v1/zones/THIES-NORD/restore", timeout=5).raise_for_status()
    assert worker.run_once(settings).get("notifications_sent", 0) == 1
    assert [(m["To"], m["Body"]) for m in twilio.sent] == [(f"whatsapp:{SAHEL}", POWER_BACK_EN)]
    assert provider.sent == []


def test_on_whatsapp_a_customer_who_chose_sms_is_still_told_by_sms(handset, app, settings, backoffice_url,
                                                                  twilio, provider):
    app.extensions["parts"]["deps"].contacts.set_channel(SAHEL, "sms", via="ussd", source="menu")
    assert ask_for_the_power_back_alert(handset) == (
        f"You will be told by SMS when power is back in your area (THIES-NORD).\n{NAV_EN}")
    requests.post(f"{backoffice_url}/api/v1/zones/THIES-NORD/restore", timeout=5).raise_for_status()
    assert worker.run_once(settings).get("notifications_sent", 0) == 1
    assert provider.messages_to(SAHEL) == [POWER_BACK_EN]
    assert twilio.sent == []
