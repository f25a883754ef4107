"""Alerts switched on in a WhatsApp conversation come on WhatsApp: ``ALERTES ON`` or the Preferences menu's
toggle, then an outage declared in the customer's zone in the back office, and the worker sends it through
Twilio's Messages API (faked on loopback; the SMS provider faked too, to see nothing goes by SMS). The
confirmation names the channel. A channel the customer chose for their messages still wins, and the consent
history says where the customer spoke apart from where the alerts go."""

from __future__ import annotations

import pytest
import requests
from flask import Flask

from app import worker
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_twilio import FakeTwilio

from .whatsapp_phones import TwilioWhatsAppPhone, twilio_sending

AWA = "+221770000001"       # French, one postpaid account 1000001 in zone DKR-MEDINA
OUTAGE_FR = ("ElecNet: coupure de courant dans la zone DKR-MEDINA. Nos équipes sont sur place. "
             "Veuillez nous excuser pour le désagrément.")


@pytest.fixture
def settings(settings: Settings, provider: FakeAfricasTalking, twilio: FakeTwilio) -> Settings:
    return twilio_sending(settings, twilio, provider)


@pytest.fixture
def awa(app: Flask, twilio: FakeTwilio) -> TwilioWhatsAppPhone:
    return TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)


def declare_outage_and_deliver(backoffice_url: str, settings: Settings) -> int:
    requests.post(f"{backoffice_url}/api/v1/zones/DKR-MEDINA/outage", timeout=5).raise_for_status()
    return int(worker.run_once(settings).get("notifications_sent", 0))


def test_alertes_on_from_whatsapp_brings_the_outage_alert_on_whatsapp(awa, app, settings, backoffice_url,
                                                                     twilio, provider):
    assert awa.say("ALERTES ON") == (
        "Alertes activées par WhatsApp pour le compte 1000001: panne dans votre zone, facture émise, paiement "
        "d'un autre numéro. Envoyez ALERTES OFF pour les couper.")
    assert declare_outage_and_deliver(backoffice_url, settings) == 1
    assert [(m["To"], m["Body"]) for m in twilio.sent] == [(f"whatsapp:{AWA}", OUTAGE_FR)]
    assert provider.sent == []
    consent = app.extensions["parts"]["deps"].consent
    assert {(c.action, c.channel, c.delivery, c.source) for c in consent.history(AWA)} == {
        ("opt_in", "whatsapp", "whatsapp", "keyword ALERTES")}


def test_the_menu_toggle_on_whatsapp_names_whatsapp_and_the_alert_comes_there(awa, settings, backoffice_url,
                                                                             twilio, provider):
    awa.say("Bonjour")
    awa.say("8")                                        # Préférences
    assert awa.say("2").startswith("Alertes par WhatsApp (choisissez pour changer):")
    assert "Panne dans ma zone: oui" in awa.say("1")
    assert declare_outage_and_deliver(backoffice_url, settings) == 1
    assert [(m["To"], m["Body"]) for m in twilio.sent] == [(f"whatsapp:{AWA}", OUTAGE_FR)]
    assert provider.sent == []


def test_a_customer_who_chose_sms_switches_alerts_on_from_whatsapp_and_gets_them_by_sms(awa, app, settings,
                                                                                       backoffice_url, twilio,
                                                                                       provider):
    app.extensions["parts"]["deps"].contacts.set_channel(AWA, "sms", via="ussd", source="menu")
    assert awa.say("ALERTES ON").startswith("Alertes activées par SMS pour le compte 1000001")
    assert declare_outage_and_deliver(backoffice_url, settings) == 1
    assert provider.messages_to(AWA) == [OUTAGE_FR]
    assert twilio.sent == []
