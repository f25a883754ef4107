"""Notifications on WhatsApp through Twilio (Meta not configured): the worker sends the outbox's messages with
Twilio's SDK to its fake on loopback, which then posts each message's status back to the product, signed, as
Twilio does. An outage alert goes as its approved template (``whatsapp_template`` in the notifications, its
Content SID per language from ``TWILIO_CONTENT_SIDS``), which WhatsApp delivers however long ago the customer
last wrote; without a Content SID in the message's language it goes as text. A text Twilio took, then reported
undeliverable outside the 24-hour window (63016), goes by SMS, once."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app import worker
from app.factory import build_dispatcher
from app.settings import Settings
from app.storage import SqlConsent, SqlOutbox, make_sessions
from app.storage.contacts import SqlContacts
from app.storage.models import OutboxEventRow
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_twilio import FakeTwilio

from .whatsapp_phones import TwilioWhatsAppPhone, twilio_reports, twilio_sending

AWA, SAHEL = "+221770000001", "+221770000002"
OUTAGE_FR, OUTAGE_EN = "HX" + "0f" * 16, "HX" + "0e" * 16
RESTORED_FR, RESTORED_EN = "HX" + "1f" * 16, "HX" + "1e" * 16
ALL_SIDS = (("outage_declared", "fr", OUTAGE_FR), ("outage_declared", "en", OUTAGE_EN),
            ("power_restored", "fr", RESTORED_FR), ("power_restored", "en", RESTORED_EN))
OUTAGE_TEXT_FR = ("ElecNet: coupure de courant dans la zone DKR-PLATEAU. Nos équipes sont sur place. "
                  "Veuillez nous excuser pour le désagrément.")
BILL_FR = ("ElecNet: nouvelle facture pour le compte 1000001: 12 500 FCFA, à payer avant le 15/12/2026. "
           "Payez par *123#.")


@pytest.fixture
def settings(settings: Settings, provider: FakeAfricasTalking, twilio: FakeTwilio) -> Settings:
    """WhatsApp through Twilio with the shipped templates' Content SIDs in both languages; SMS through its fake."""
    return replace(twilio_sending(settings, twilio, provider), twilio_content_sids=ALL_SIDS)


def on_whatsapp(settings: Settings, *msisdns: str) -> None:
    for msisdn in msisdns:
        SqlContacts(make_sessions(settings.database_url)).set_channel(msisdn, "whatsapp", via="ussd", source="menu")


def outage_alert_for(settings: Settings, msisdn: str, language: str) -> None:
    """The alert the notice relay queues for a customer who asked for outage alerts in DKR-PLATEAU."""
    sessions = make_sessions(settings.database_url)
    SqlConsent(sessions).opt_in(msisdn, "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
    assert SqlOutbox(sessions).add(kind="outage_declared", msisdn=msisdn, language=language,
                                   dedupe_key=f"outage:1:{msisdn}", payload={"zone": "DKR-PLATEAU", "no_eta": True})


def rows_of(settings: Settings, msisdn: str) -> list[dict[str, Any]]:
    """Each outbox row of ``msisdn`` as agents see it, oldest first."""
    with make_sessions(settings.database_url)() as db:
        return [{"kind": r.kind, "status": r.status, "channel": r.channel, "delivery": r.delivery_status,
                 "error": r.last_error}
                for r in db.scalars(select(OutboxEventRow).where(OutboxEventRow.msisdn == msisdn)
                                    .order_by(OutboxEventRow.id))]


def test_an_outage_alert_reaches_a_customer_silent_for_days_as_its_approved_template(settings, app, twilio,
                                                                                      provider):
    twilio.window_closed.add(AWA)                       # Awa has not written to us for days
    on_whatsapp(settings, AWA)
    outage_alert_for(settings, AWA, "fr")
    assert worker.run_once(settings).get("notifications_sent") == 1
    [alert] = twilio.sent
    assert alert["To"] == f"whatsapp:{AWA}" and alert["ContentSid"] == OUTAGE_FR and "Body" not in alert
    assert json.loads(alert["ContentVariables"]) == {"1": "DKR-PLATEAU"}
    assert twilio_reports(app.test_client(), twilio) == [204]       # Twilio: delivered
    [row] = rows_of(settings, AWA)
    assert (row["status"], row["channel"], row["delivery"]) == ("sent", "whatsapp", "delivered")
    assert provider.sent == []


def test_without_a_content_sid_in_the_customer_s_language_the_alert_goes_as_text(settings, twilio, provider):
    english_only = replace(settings, twilio_content_sids=(("outage_declared", "en", OUTAGE_EN),))
    on_whatsapp(settings, AWA, SAHEL)
    outage_alert_for(settings, AWA, "fr")
    outage_alert_for(settings, SAHEL, "en")
    assert worker.run_once(english_only).get("notifications_sent") == 2
    sent = {m["To"]: m for m in twilio.sent}
    assert sent[f"whatsapp:{SAHEL}"]["ContentSid"] == OUTAGE_EN
    assert sent[f"whatsapp:{AWA}"]["Body"] == OUTAGE_TEXT_FR and "ContentSid" not in sent[f"whatsapp:{AWA}"]


def test_a_text_twilio_took_then_reported_outside_the_window_goes_by_sms_once(settings, app, twilio, provider):
    twilio.window_closed.add(AWA)
    sessions = make_sessions(settings.database_url)
    SqlConsent(sessions).opt_in(AWA, "bill_issued", "1000001", channel="ussd", source="menu")
    on_whatsapp(settings, AWA)
    assert SqlOutbox(sessions).add(kind="bill_issued", msisdn=AWA, language="fr", dedupe_key="bill:1",
                                   payload={"account_number": "1000001", "amount": "12500", "due_date": "2026-12-15"})
    assert worker.run_once(settings).get("notifications_sent") == 1
    assert [m["Body"] for m in twilio.sent] == [BILL_FR]        # Twilio took it (201, queued) ...
    [(url, undelivered)] = twilio.callbacks
    assert (undelivered["MessageStatus"], undelivered["ErrorCode"]) == ("undelivered", "63016")
    client = app.test_client()
    assert twilio_reports(client, twilio) == [204]              # ... then could not deliver it
    assert worker.run_once(settings).get("notifications_sent") == 1
    assert provider.messages_to(AWA) == [BILL_FR]
    [row] = rows_of(settings, AWA)
    assert (row["status"], row["channel"]) == ("sent", "sms")
    assert row["error"] is None

    twilio.callbacks.append((url, undelivered))                # Twilio posts the same status again
    assert twilio_reports(client, twilio) == [204]
    assert worker.run_once(settings).get("notifications_sent") is None
    assert len(twilio.sent) == 1 and len(provider.sent) == 1


def test_the_worker_names_each_template_an_operator_left_without_a_content_sid(settings, caplog):
    french_only = replace(settings, twilio_content_sids=(("outage_declared", "fr", OUTAGE_FR),
                                                         ("power_restored", "fr", RESTORED_FR),
                                                         ("outage_declard", "en", OUTAGE_EN)))
    with caplog.at_level(logging.WARNING, logger="app"):
        build_dispatcher(french_only, make_sessions(settings.database_url))
    warnings = [r.getMessage() for r in caplog.records if r.name == "app"]
    assert ("WhatsApp template 'outage_declared' has no Twilio Content SID for 'en' (TWILIO_CONTENT_SIDS): sent as "
            "free text, by SMS outside the 24-hour window") in warnings
    assert any(w.startswith("WhatsApp template 'power_restored' has no Twilio Content SID for 'en'") for w in warnings)
    assert ("TWILIO_CONTENT_SIDS names 'outage_declard', which no notification uses as its whatsapp_template"
            in warnings)
    assert not any("for 'fr'" in w for w in warnings)


@pytest.mark.parametrize("value", ["outage_declared=HX" + "0" * 32,           # no language
                                   "outage_declared:fr=SM" + "0" * 32,        # a message SID, not a Content SID
                                   "outage_declared:fr=HX123"])
def test_a_content_sid_setting_that_cannot_be_one_stops_start_up_naming_it(monkeypatch, value):
    monkeypatch.setenv("TWILIO_CONTENT_SIDS", f"power_restored:fr=HX{'1' * 32}, {value}")
    with pytest.raises(ValueError, match=f"TWILIO_CONTENT_SIDS: '{value}' is not template:language=HX"):
        Settings.from_env()


def test_content_sids_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TWILIO_CONTENT_SIDS", f"outage_declared:fr={OUTAGE_FR}, outage_declared:en={OUTAGE_EN}")
    assert Settings.from_env().twilio_content_sids == (("outage_declared", "fr", OUTAGE_FR),
                                                       ("outage_declared", "en", OUTAGE_EN))


# --- WhatsApp's 24-hour window: free text while it is open -----------------------------------------------------

def writes_to_us(app: Flask, twilio: FakeTwilio, msisdn: str) -> None:
    """The customer writes to our Twilio number (signed as Twilio signs with this account's token)."""
    assert TwilioWhatsAppPhone(app.test_client(), msisdn, token=twilio.auth_token).send("MENU")


def test_a_customer_who_wrote_lately_gets_the_outage_alert_as_free_text(settings, app, twilio, provider):
    writes_to_us(app, twilio, AWA)
    on_whatsapp(settings, AWA)
    outage_alert_for(settings, AWA, "fr")
    assert worker.run_once(settings).get("notifications_sent") == 1
    [alert] = twilio.sent
    assert alert["Body"] == OUTAGE_TEXT_FR and "ContentSid" not in alert
    assert twilio_reports(app.test_client(), twilio) == [204]
    menu, row = rows_of(settings, AWA)      # the webhook's answer to MENU, recorded as sent, then the alert
    assert (menu["kind"], menu["status"]) == ("whatsapp_reply", "sent")
    assert (row["status"], row["channel"], row["delivery"]) == ("sent", "whatsapp", "delivered")


def test_a_customer_who_wrote_to_another_of_our_twilio_numbers_gets_the_alert_as_its_template(
        settings, app, twilio, provider):
    """The window is with the number written to: Awa wrote to our second Twilio number, and the alert goes from
    the configured one, where she has no open chat: as the approved template, which WhatsApp delivers."""
    assert TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token, ours="+14155238899").send("MENU")
    on_whatsapp(settings, AWA)
    outage_alert_for(settings, AWA, "fr")
    assert worker.run_once(settings).get("notifications_sent") == 1
    [alert] = twilio.sent
    assert (alert["From"], alert["ContentSid"]) == ("whatsapp:+14155238886", OUTAGE_FR) and "Body" not in alert


def test_free_text_twilio_refuses_at_once_outside_the_window_goes_as_the_template(settings, app, twilio, provider):
    writes_to_us(app, twilio, AWA)
    on_whatsapp(settings, AWA)
    outage_alert_for(settings, AWA, "fr")
    twilio.next_error[:] = [(400, 63016, "Outside the allowed window.")]
    assert worker.run_once(settings).get("notifications_sent") == 1
    [alert] = twilio.sent
    assert alert["ContentSid"] == OUTAGE_FR and "Body" not in alert
    assert provider.sent == []


def test_free_text_twilio_took_then_reported_outside_the_window_goes_again_as_the_template_once(
        settings, app, twilio, provider):
    writes_to_us(app, twilio, AWA)
    on_whatsapp(settings, AWA)
    outage_alert_for(settings, AWA, "fr")
    twilio.window_closed.add(AWA)                       # the window closed after all (a clock, a late webhook)
    assert worker.run_once(settings).get("notifications_sent") == 1
    client = app.test_client()
    assert twilio_reports(client, twilio) == [204]      # free text: undelivered, 63016
    assert worker.run_once(settings).get("notifications_sent") == 1
    text, template = twilio.sent
    assert text["Body"] == OUTAGE_TEXT_FR and template["ContentSid"] == OUTAGE_FR
    assert twilio_reports(client, twilio) == [204]      # the template: delivered
    menu, row = rows_of(settings, AWA)
    assert menu["kind"] == "whatsapp_reply"
    assert (row["status"], row["channel"], row["delivery"]) == ("sent", "whatsapp", "delivered")
    assert worker.run_once(settings).get("notifications_sent") is None
    assert len(twilio.sent) == 2 and provider.sent == []
