"""Notifications on WhatsApp through Meta's Cloud API: the worker sends the outbox's messages from our
business number (``META_PHONE_NUMBER_ID``) to a fake Graph API on loopback. An outage alert goes as its
approved template (Meta delivers it however long ago the customer last wrote), a kind without a template
as free text, and a text Meta refuses outside the 24-hour window (131047), at once or later in a status
event, by SMS instead; Meta's status events move the row to delivered. With Twilio configured as well, Meta
sends, at Meta's own rate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from app import worker
from app.settings import Settings
from app.storage import SqlConsent, SqlOutbox, make_sessions
from app.storage.contacts import SqlContacts
from app.storage.models import OutboxEventRow
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph
from tests.support.fake_twilio import FakeTwilio

from .whatsapp_phones import PHONE_NUMBER_ID, MetaWhatsAppPhone

AWA = "+221771000001"
BILL_FR = ("ElecNet: nouvelle facture pour le compte 1000001: 12 500 FCFA, à payer avant le 15/12/2026. "
           "Payez par *123#.")


@pytest.fixture
def settings(wa_settings: Settings, provider: FakeAfricasTalking, twilio: FakeTwilio) -> Settings:
    """Both WhatsApp providers configured to send (Meta with our number's id, Twilio with its sender), SMS
    through its fake; quiet hours off (tests run at any hour)."""
    return replace(wa_settings, meta_phone_number_id=PHONE_NUMBER_ID, twilio_account_sid=twilio.account_sid,
                   twilio_whatsapp_from="+14155238886", twilio_api_url=twilio.url, at_api_key=provider.api_key,
                   at_username=provider.username, at_api_url=provider.url, quiet_hours="")


def on_whatsapp(settings: Settings, msisdn: str) -> None:
    SqlContacts(make_sessions(settings.database_url)).set_channel(msisdn, "whatsapp", via="ussd", source="menu")


def rows_of(settings: Settings, msisdn: str) -> list[dict[str, Any]]:
    """Each notification row of ``msisdn`` as agents see it, oldest first (not the rows recording the webhook's
    replies to what the customer wrote: ``whatsapp_reply``)."""
    with make_sessions(settings.database_url)() as db:
        return [{"kind": r.kind, "status": r.status, "channel": r.channel, "delivery": r.delivery_status,
                 "message_id": r.provider_message_id, "error": r.last_error}
                for r in db.scalars(select(OutboxEventRow).where(OutboxEventRow.msisdn == msisdn,
                                                                 OutboxEventRow.kind != "whatsapp_reply")
                                    .order_by(OutboxEventRow.id))]

def meta_status(awa: MetaWhatsAppPhone, message_id: str, status: str, code: int | None = None) -> None:
    """Meta's status event about one of our messages, posted to the webhook as Meta signs it."""
    event = awa.event(awa.message("text", {"body": "x"}))
    value = event["entry"][0]["changes"][0]["value"]
    del value["messages"], value["contacts"]
    value["statuses"] = [{"id": message_id, "status": status, "timestamp": "1764150000",
                          "recipient_id": awa.wa_id, **({"errors": [{"code": code}]} if code else {})}]
    assert awa.post(event) == [] and awa.last_status == 200


def test_an_outage_alert_goes_on_whatsapp_through_meta_as_its_template_and_meta_s_statuses_follow_it(
        settings, backoffice_url, graph, provider, twilio, meta_phone):
    SqlConsent(make_sessions(settings.database_url)).opt_in(AWA, "outage_zone", "DKR-PLATEAU", channel="ussd",
                                                           source="menu")
    on_whatsapp(settings, AWA)
    declared = requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/outage",
                             json={"eta": "2026-11-26T18:30:00Z", "cause": "transformer"}, timeout=5)
    assert declared.status_code == 201, declared.text

    assert worker.run_once(settings).get("notifications_sent") == 1
    [alert] = graph.messages_to("221771000001")
    assert alert["phone_number_id"] == PHONE_NUMBER_ID and alert["type"] == "template"
    assert alert["template"] == {"name": "outage_declared", "language": {"code": "fr"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "DKR-PLATEAU"}]}]}
    assert provider.sent == [] and twilio.sent == []       # Meta sends when both are configured
    [row] = rows_of(settings, AWA)
    assert (row["status"], row["channel"], row["delivery"], row["message_id"]) == (
        "sent", "whatsapp", "sent", alert["id"])

    # Meta tells us it reached the handset, then that it was read.
    for status in ("delivered", "read"):
        meta_status(meta_phone(AWA), alert["id"], status)
        assert rows_of(settings, AWA)[0]["delivery"] == "delivered"


def bill_for_awa(settings: Settings) -> None:
    """A bill notice queued for a customer on WhatsApp who wants them (a kind without a template)."""
    sessions = make_sessions(settings.database_url)
    SqlConsent(sessions).opt_in("+221770000001", "bill_issued", "1000001", channel="ussd", source="menu")
    on_whatsapp(settings, "+221770000001")
    assert SqlOutbox(sessions).add(kind="bill_issued", msisdn="+221770000001", language="fr", dedupe_key="bill:1",
                                   payload={"account_number": "1000001", "amount": "12500",
                                            "due_date": "2026-12-15"})


def test_a_kind_without_a_template_goes_as_text_and_by_sms_when_meta_says_outside_the_window(
        settings, graph, provider, twilio):
    graph.next_errors[:] = [(400, 131047)]              # Meta: more than 24 hours since the customer wrote
    bill_for_awa(settings)
    assert worker.run_once(settings).get("notifications_sent") == 1
    assert graph.sent == [] and twilio.sent == []
    assert provider.messages_to("+221770000001") == [BILL_FR]
    [row] = rows_of(settings, "+221770000001")
    assert (row["kind"], row["status"], row["channel"]) == ("bill_issued", "sent", "sms")


def test_inside_the_window_a_kind_without_a_template_is_the_text_itself(settings, graph, provider):
    bill_for_awa(settings)
    assert worker.run_once(settings).get("notifications_sent") == 1
    [bill] = graph.messages_to("221770000001")
    assert bill["type"] == "text" and bill["text"]["body"] == BILL_FR
    assert provider.sent == []


def test_meta_down_keeps_the_message_for_the_next_pass(settings, graph, provider):
    graph.next_errors[:] = [(503, 2), (503, 2)]
    bill_for_awa(settings)
    assert worker.run_once(settings).get("notifications_retried") == 1
    assert graph.sent == [] and provider.sent == []
    [row] = rows_of(settings, "+221770000001")
    assert row["status"] == "pending" and row["error"].startswith("whatsapp:")


def test_meta_s_sends_keep_meta_s_rate_not_twilio_s(settings, backoffice_url, graph, twilio):
    consent = SqlConsent(make_sessions(settings.database_url))
    for msisdn in ("+221771000001", "+221771000002"):
        consent.opt_in(msisdn, "outage_zone", "DKR-PLATEAU", channel="ussd", source="menu")
        on_whatsapp(settings, msisdn)
    requests.post(f"{backoffice_url}/api/v1/zones/DKR-PLATEAU/outage", json={"cause": "transformer"},
                  timeout=5).raise_for_status()
    paced = replace(settings, send_rates="africastalking=10,twilio=100,meta=0.1")   # Meta: one per 10 s
    assert worker.run_once(paced).get("notifications_sent") == 1
    assert len(graph.sent) == 1                   # the second alert waits for Meta's next slot



def test_a_text_meta_took_then_failed_outside_the_window_is_sent_by_sms_once(settings, graph, provider, meta_phone):
    bill_for_awa(settings)
    worker.run_once(settings)
    [bill] = graph.messages_to("221770000001")       # Meta took it (200) ...
    meta_status(meta_phone("+221770000001"), bill["id"], "failed", 131047)   # ... then could not deliver it
    assert worker.run_once(settings).get("notifications_sent") == 1
    assert provider.messages_to("+221770000001") == [BILL_FR]
    [row] = rows_of(settings, "+221770000001")
    assert (row["status"], row["channel"]) == ("sent", "sms")
    assert worker.run_once(settings).get("notifications_sent") is None
    assert len(graph.sent) == 1 and len(provider.sent) == 1


def test_another_failure_meta_reports_stays_failed_for_agents(settings, graph, provider, meta_phone):
    bill_for_awa(settings)
    worker.run_once(settings)
    [bill] = graph.messages_to("221770000001")
    meta_status(meta_phone("+221770000001"), bill["id"], "failed", 131026)   # undeliverable: SMS would not help
    assert worker.run_once(settings).get("notifications_sent") is None
    assert provider.sent == []
    [row] = rows_of(settings, "+221770000001")
    assert (row["status"], row["channel"], row["delivery"]) == ("sent", "whatsapp", "failed")


# --- WhatsApp's 24-hour window: free text (free of Meta's per-template charge) while it is open ---------------

OUTAGE_TEXT_FR = ("ElecNet: coupure de courant dans la zone DKR-PLATEAU. Nos équipes sont sur place. "
                  "Veuillez nous excuser pour le désagrément.")


def outage_alert_for(settings: Settings, msisdn: str) -> None:
    """The alert the notice relay queues for a customer on WhatsApp who asked for outage alerts in DKR-PLATEAU."""
    sessions = make_sessions(settings.database_url)
    SqlConsent(sessions).opt_in(msisdn, "outage_zone", "DKR-PLATEAU", channel="whatsapp", source="menu")
    on_whatsapp(settings, msisdn)
    assert SqlOutbox(sessions).add(kind="outage_declared", msisdn=msisdn, language="fr",
                                   dedupe_key=f"outage:1:{msisdn}", payload={"zone": "DKR-PLATEAU", "no_eta": True})


def test_a_customer_who_wrote_a_minute_ago_gets_the_outage_alert_as_free_text_not_the_billed_template(
        settings, graph, provider, meta_phone):
    awa = meta_phone(AWA)
    assert awa.send("MENU")                            # Awa writes to us: her 24-hour window is open
    outage_alert_for(settings, AWA)
    assert worker.run_once(settings).get("notifications_sent") == 1
    alert = awa.last_sent()
    assert alert["type"] == "text" and alert["text"]["body"] == OUTAGE_TEXT_FR
    assert provider.sent == []
    [row] = rows_of(settings, AWA)
    assert (row["status"], row["channel"], row["message_id"]) == ("sent", "whatsapp", alert["id"])


@pytest.mark.parametrize("product_clock", [datetime(2026, 11, 26, 8, 0, tzinfo=UTC)], indirect=True)
def test_past_23_hours_30_since_the_customer_wrote_the_alert_goes_as_the_template(
        settings, graph, provider, meta_phone, product_clock):
    awa = meta_phone(AWA)
    assert awa.send("MENU")
    outage_alert_for(settings, AWA)
    product_clock.advance(hours=23, minutes=31)        # still inside WhatsApp's 24 hours, past our margin
    assert worker.run_once(settings).get("notifications_sent") == 1
    alert = awa.last_sent()
    assert alert["type"] == "template" and alert["template"]["name"] == "outage_declared"


def test_a_customer_who_only_reacted_to_our_message_gets_the_alert_as_free_text(settings, graph, provider,
                                                                                meta_phone):
    """Meta counts a reaction as the customer's message: it opens the window (``whatsapp_meta._note_window``
    cites the documentation). The reaction itself gets no answer."""
    awa = meta_phone(AWA)
    reaction = awa.message("reaction", {"message_id": "wamid.HBgLMjIxNzcxMDAwMDAxFQIAERgS", "emoji": "👍"})
    assert awa.post(awa.event(reaction)) == [] and awa.last_status == 200
    assert graph.messages_to(awa.wa_id) == []
    outage_alert_for(settings, AWA)
    assert worker.run_once(settings).get("notifications_sent") == 1
    alert = awa.last_sent()
    assert alert["type"] == "text" and alert["text"]["body"] == OUTAGE_TEXT_FR


def test_a_reaction_meta_delivers_a_day_late_does_not_open_the_window(settings, graph, provider, meta_phone):
    awa = meta_phone(AWA)
    reaction = awa.message("reaction", {"message_id": "wamid.HBgLMjIxNzcxMDAwMDAxFQIAERgS", "emoji": "👍"})
    reaction["timestamp"] = str(int(time.time()) - 25 * 3600)    # reacted 25 hours ago
    assert awa.post(awa.event(reaction)) == []
    outage_alert_for(settings, AWA)
    assert worker.run_once(settings).get("notifications_sent") == 1
    assert awa.last_sent()["type"] == "template"


def test_whatsapp_telling_us_a_customer_changed_number_opens_no_window(settings, graph, provider, meta_phone):
    """A ``system`` message is WhatsApp's, not the customer's (``whatsapp_meta._note_window`` cites Meta's
    documentation): neither the old number nor the new one wrote to us, so the alert goes as the template."""
    awa = meta_phone(AWA)
    changed = awa.message("system", {"body": "User Awa changed from 221771000001 to 221771000009",
                                     "wa_id": "221771000009", "type": "user_changed_number"})
    event = awa.event(changed)
    del event["entry"][0]["changes"][0]["value"]["contacts"]          # system messages come without contacts
    assert awa.post(event) == [] and awa.last_status == 200
    for msisdn in (AWA, "+221771000009"):
        outage_alert_for(settings, msisdn)
    assert worker.run_once(settings).get("notifications_sent") == 2
    for wa_id in ("221771000001", "221771000009"):
        [alert] = graph.messages_to(wa_id)
        assert alert["type"] == "template" and alert["template"]["name"] == "outage_declared"


def test_a_customer_opening_our_chat_for_the_first_time_gets_the_alert_as_free_text(settings, graph, provider,
                                                                                   meta_phone):
    """Meta: "The request_welcome webhook triggers a customer service window"."""
    awa = meta_phone(AWA)
    welcome = awa.message("request_welcome", {})
    del welcome["request_welcome"]
    assert awa.post(awa.event(welcome)) == [] and awa.last_status == 200
    outage_alert_for(settings, AWA)
    assert worker.run_once(settings).get("notifications_sent") == 1
    alert = awa.last_sent()
    assert alert["type"] == "text" and alert["text"]["body"] == OUTAGE_TEXT_FR


def test_a_window_opened_with_another_of_our_meta_numbers_does_not_open_it_with_the_sending_one(
        settings, wa_app, graph, provider):
    """Awa wrote to our second Meta number (a 25-digit phone number id); the alert goes from the configured one,
    where she has no open chat: as the template."""
    other = MetaWhatsAppPhone(wa_app.test_client(), graph, AWA, phone_number_id="1065403522429221234567890")
    assert other.send("MENU")
    outage_alert_for(settings, AWA)
    assert worker.run_once(settings).get("notifications_sent") == 1
    alert = graph.messages_to("221771000001")[-1]
    assert (alert["phone_number_id"], alert["type"]) == (PHONE_NUMBER_ID, "template")


def test_a_window_opened_with_twilio_s_number_does_not_open_it_with_meta_s(settings, graph, provider, twilio_phone,
                                                                           meta_phone):
    assert twilio_phone(AWA).send("MENU")              # Awa wrote to our Twilio number, not Meta's
    outage_alert_for(settings, AWA)
    assert worker.run_once(settings).get("notifications_sent") == 1
    assert meta_phone(AWA).last_sent()["type"] == "template"


def test_free_text_meta_refuses_as_outside_the_window_goes_again_as_the_template_not_by_sms(
        settings, graph, provider, meta_phone):
    awa = meta_phone(AWA)
    assert awa.send("MENU")
    outage_alert_for(settings, AWA)
    graph.next_errors[:] = [(400, 131047)]             # Meta: more than 24 hours after all
    assert worker.run_once(settings).get("notifications_sent") == 1
    alert = awa.last_sent()
    assert alert["type"] == "template" and alert["template"]["name"] == "outage_declared"
    assert provider.sent == []
    [row] = rows_of(settings, AWA)
    assert (row["status"], row["channel"], row["message_id"]) == ("sent", "whatsapp", alert["id"])


def test_a_template_meta_refuses_after_the_refused_free_text_goes_by_sms(settings, graph, provider, meta_phone):
    awa = meta_phone(AWA)
    assert awa.send("MENU")
    outage_alert_for(settings, AWA)
    graph.next_errors[:] = [(400, 131047), (400, 132001)]   # outside the window; template not approved
    assert worker.run_once(settings).get("notifications_sent") == 1
    assert provider.messages_to(AWA) == [OUTAGE_TEXT_FR]
    assert awa.last_sent()["type"] != "template"       # only the reply to MENU went out on WhatsApp
    [row] = rows_of(settings, AWA)
    assert (row["status"], row["channel"]) == ("sent", "sms")


def test_free_text_meta_took_then_failed_outside_the_window_goes_again_as_the_template_once(
        settings, graph, provider, meta_phone):
    awa = meta_phone(AWA)
    assert awa.send("MENU")
    outage_alert_for(settings, AWA)
    worker.run_once(settings)
    text = awa.last_sent()
    assert text["type"] == "text"                      # Meta took it (200) ...
    meta_status(awa, text["id"], "failed", 131047)     # ... then could not deliver it
    assert worker.run_once(settings).get("notifications_sent") == 1
    template = awa.last_sent()
    assert template["type"] == "template" and template["template"]["name"] == "outage_declared"
    assert provider.sent == []
    [row] = rows_of(settings, AWA)
    assert (row["status"], row["channel"], row["message_id"]) == ("sent", "whatsapp", template["id"])
    meta_status(awa, text["id"], "failed", 131047)     # the same status again: nothing more
    assert worker.run_once(settings).get("notifications_sent") is None
    assert awa.last_sent() == template and provider.sent == []


def test_a_message_meta_delivers_again_a_day_later_does_not_open_the_window_anew(settings, graph, provider,
                                                                                  meta_phone):
    awa = meta_phone(AWA)
    message = awa.message("text", {"body": "MENU"})
    message["timestamp"] = str(int(time.time()) - 25 * 3600)   # written 25 hours ago, redelivered now
    assert awa.post(awa.event(message))
    outage_alert_for(settings, AWA)
    assert worker.run_once(settings).get("notifications_sent") == 1
    assert awa.last_sent()["type"] == "template"


# --- A worker that dies between the free text's send and its record --------------------------------------------

def worker_process(settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking) -> subprocess.Popen[bytes]:
    """``python -m app worker`` sending WhatsApp through the fake Graph API (Meta) and SMS through its fake."""
    env = {**os.environ, "DATABASE_URL": settings.database_url, "BACKOFFICE_URL": settings.backoffice_url,
           "META_APP_SECRET": settings.meta_app_secret, "META_ACCESS_TOKEN": settings.meta_access_token,
           "META_PHONE_NUMBER_ID": PHONE_NUMBER_ID, "GRAPH_API_URL": graph.api_url,
           "AT_API_KEY": provider.api_key, "AT_USERNAME": provider.username, "AT_API_URL": provider.url,
           "QUIET_HOURS": "", "NOTIFY_INTERVAL_SECONDS": "0.1", "WORKER_INTERVAL_SECONDS": "3600",
           "SECRET_KEY": settings.secret_key or "test-worker-key"}
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_a_worker_killed_after_meta_took_the_free_text_then_131047_sends_the_template_not_sms(
        settings, graph, provider, meta_phone):
    """Awa wrote, so the worker sends the outage alert as free text; Meta takes it and the worker is killed before
    it records the send. Meta then reports the text undeliverable outside the window (131047): crash recovery
    adopts that report and sends the alert as its template, as a worker that had recorded the send would, never
    by SMS."""
    awa = meta_phone(AWA)
    assert awa.send("MENU")                            # her window is open
    outage_alert_for(settings, AWA)
    release = threading.Event()
    graph.before_answer = lambda taken: release.wait(20) if taken.get("type") == "text" else None
    process = worker_process(settings, graph, provider)
    try:
        deadline = time.monotonic() + 30
        while not any(m["type"] == "text" and m["text"]["body"] == OUTAGE_TEXT_FR for m in graph.sent):
            assert time.monotonic() < deadline, "the worker did not send the alert"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)            # Meta has the text; the worker dies before its answer
        process.wait(10)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
    graph.before_answer = None
    text = awa.last_sent()
    assert text["type"] == "text" and rows_of(settings, AWA)[0]["status"] == "sending"

    assert awa.status(text["id"], "failed", 131047) == 200   # outside the window after all
    later = replace(settings, clock=lambda: datetime.now(UTC) + timedelta(minutes=2))
    worker.run_once(later)                             # recovery: the stale row adopts Meta's report ...
    assert rows_of(settings, AWA)[0]["status"] == "pending"
    assert worker.run_once(later).get("notifications_sent") == 1    # ... and the next pass sends it again
    template = awa.last_sent()
    assert template["type"] == "template" and template["template"]["name"] == "outage_declared"
    assert provider.sent == []
    [row] = rows_of(settings, AWA)
    assert (row["status"], row["channel"], row["message_id"]) == ("sent", "whatsapp", template["id"])
    assert worker.run_once(later).get("notifications_sent") is None
