"""A reply Twilio's webhook gives inline in its TwiML is as safe as one sent through Meta's API: each ``<Message>``
asks Twilio (``action``, by POST) to post its status to the signed status endpoint under an opaque reference (no
phone number, no Twilio id), and the reply is recorded as a sent ``whatsapp_reply``. When Twilio then reports it
``undelivered`` outside the 24-hour window (63016), the customer gets it by SMS, once, and agents see it; another
failure stays ``failed`` for agents. A forged status is refused; a status for a reference the product never gave
is answered cleanly and changes nothing. A reply showing a prepaid token is kept sealed, never marked plain.
Through the product's Flask app (the handset signs as Twilio signs), the real ``twilio`` SDK's TwiML and
``RequestValidator`` in the product, the fake Africa's Talking SMS API on loopback, and the worker on the product's
clock."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import make_sessions
from app.storage.agent_console import SqlCustomerRecords
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_twilio import FakeTwilio
from tests.support.outbox_rows import raw_rows

from .whatsapp_phones import (
    TWILIO_NUMBER,
    TWILIO_PUBLIC_URL,
    TwilioWhatsAppPhone,
    post_twilio_status,
    twilio_sending,
    twilio_signature,
    twiml_actions,
    twiml_messages,
)

AWA = "+221770000001"          # French, account 1000001
PREPAID = "+221770000003"      # French, a prepaid meter whose last token the balance shows
BALANCE = "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures\n0. Retour 00. Accueil"
GROUPED = "4821 3907 5612 8473 0195"   # the demo meter's last token, as the balance prints it
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)
_sids = itertools.count(1)


@pytest.fixture
def tw(settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking) -> Settings:
    """WhatsApp through Twilio (its token signs the webhooks and the status callbacks), SMS through Africa's
    Talking's fake; the web process and the worker share SECRET_KEY (the outbox's seal)."""
    return replace(twilio_sending(settings, twilio, provider), secret_key="twiml-reply-status-test-key")


@pytest.fixture
def app(tw: Settings) -> Flask:
    return create_app(tw)


def status(to: str, state: str, code: str = "") -> dict[str, str]:
    """What Twilio posts about an outbound WhatsApp message it created from a TwiML answer: its own new SID."""
    sid = f"SM{next(_sids):032x}"
    return {"MessageSid": sid, "SmsSid": sid, "MessageStatus": state, "SmsStatus": state,
            "AccountSid": "AC" + "0" * 32, "From": f"whatsapp:{TWILIO_NUMBER}", "To": f"whatsapp:{to}",
            "ApiVersion": "2010-04-01", "ChannelPrefix": "whatsapp", **({"ErrorCode": code} if code else {})}


def agents_see(settings: Settings, app: Flask, msisdn: str) -> list[dict[str, str]]:
    """The messages the agents' console lists for the number, newest first."""
    parts = app.extensions["parts"]
    console = SqlCustomerRecords(make_sessions(settings.database_url), parts["security"], parts["deps"].identity)
    return [{k: n[k] for k in ("kind", "channel", "status", "delivery", "error")}
            for n in console.file(msisdn).notifications]


def after_the_worker(settings: Settings, app: Flask, provider: FakeAfricasTalking,
                     clock: SettableClock) -> tuple[str, str]:
    """The worker's next pass, which must send Awa nothing by SMS; her one reply as agents then see it: its channel
    and delivery status."""
    clock.advance(seconds=2)
    worker.run_once(settings)
    assert provider.messages_to(AWA) == []
    [row] = agents_see(settings, app, AWA)
    assert row["kind"] == "whatsapp_reply"
    return row["channel"], row["delivery"]


def reply_and_callback(app: Flask, twilio: FakeTwilio, msisdn: str, text: str = "SOLDE") -> tuple[list[str], str]:
    """``msisdn`` writes ``text`` on WhatsApp: the TwiML's messages, and the one status callback URL they name."""
    phone = TwilioWhatsAppPhone(app.test_client(), msisdn, token=twilio.auth_token)
    replies = phone.send(text)
    [(url, method)] = twiml_actions(phone.last_twiml)
    assert method == "POST"
    return replies, url


def test_a_twiml_reply_twilio_reports_undelivered_outside_the_window_reaches_the_customer_by_sms_once(
        tw: Settings, app: Flask, twilio: FakeTwilio, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    replies, url = reply_and_callback(app, twilio, AWA)
    assert replies == [BALANCE]
    # The callback names the signed status endpoint and an opaque reference: no number, no Twilio id.
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{tw.public_base_url}/whatsapp/twilio/status"
    [ref] = parse_qs(parts.query)["ref"]
    assert AWA.lstrip("+")[-6:] not in ref and not ref.startswith(("SM", "MM"))
    assert agents_see(tw, app, AWA) == [
        {"kind": "whatsapp_reply", "channel": "whatsapp", "status": "sent", "delivery": "sent", "error": "-"}]

    client = app.test_client()
    assert post_twilio_status(client, twilio.auth_token, url, status(AWA, "sent")) == 204
    assert post_twilio_status(client, twilio.auth_token, url, status(AWA, "undelivered", "63016")) == 204
    [row] = agents_see(tw, app, AWA)                                  # agents see why it goes again, and how
    assert (row["kind"], row["channel"], row["status"]) == ("whatsapp_reply", "sms", "pending")
    assert "outside the 24-hour window (twilio 63016); sent again by SMS" in row["error"]
    product_clock.advance(seconds=2)
    assert worker.run_once(tw)["notifications_sent"] == 1
    assert provider.messages_to(AWA) == [BALANCE]
    [row] = agents_see(tw, app, AWA)
    assert (row["kind"], row["channel"], row["status"]) == ("whatsapp_reply", "sms", "sent")

    assert post_twilio_status(client, twilio.auth_token, url, status(AWA, "undelivered", "63016")) == 204
    product_clock.advance(seconds=2)
    worker.run_once(tw)
    assert provider.messages_to(AWA) == [BALANCE]                     # once


def test_a_twiml_reply_that_fails_for_another_reason_stays_failed_for_agents_and_goes_by_no_sms(
        tw: Settings, app: Flask, twilio: FakeTwilio, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    _, url = reply_and_callback(app, twilio, AWA)
    # 63024: the recipient cannot be reached on WhatsApp; SMS would not mend what Twilio could not deliver there.
    assert post_twilio_status(app.test_client(), twilio.auth_token, url, status(AWA, "failed", "63024")) == 204
    assert after_the_worker(tw, app, provider, product_clock) == ("whatsapp", "failed")


def test_a_forged_status_callback_is_refused_and_changes_nothing(
        tw: Settings, app: Flask, twilio: FakeTwilio, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    _, url = reply_and_callback(app, twilio, AWA)
    client = app.test_client()
    undelivered = status(AWA, "undelivered", "63016")
    assert post_twilio_status(client, "not-the-account-token", url, undelivered) == 403
    # Signed for the endpoint without the reference: the reference is part of what Twilio signs.
    bare = url.split("?")[0]
    assert post_twilio_status(client, twilio.auth_token, url, undelivered,
                              signature=twilio_signature(twilio.auth_token, bare, undelivered)) == 403
    assert after_the_worker(tw, app, provider, product_clock) == ("whatsapp", "sent")


def test_a_status_for_a_reference_the_product_never_gave_is_answered_cleanly_and_changes_nothing(
        tw: Settings, app: Flask, twilio: FakeTwilio, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    reply_and_callback(app, twilio, AWA)
    client = app.test_client()
    unknown = f"{tw.public_base_url}/whatsapp/twilio/status?ref={'0' * 24}.0"
    assert post_twilio_status(client, twilio.auth_token, unknown, status(AWA, "undelivered", "63016")) == 204
    # Signed, but not a reference of ours (a number where the reference goes): refused as a bad request.
    malformed = f"{tw.public_base_url}/whatsapp/twilio/status?ref={AWA.lstrip('+')}"
    assert post_twilio_status(client, twilio.auth_token, malformed, status(AWA, "undelivered", "63016")) == 400
    assert after_the_worker(tw, app, provider, product_clock) == ("whatsapp", "sent")


def test_the_same_message_posted_again_gets_the_same_twiml_and_is_recorded_once(
        tw: Settings, app: Flask, twilio: FakeTwilio) -> None:
    phone = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    assert phone.send("SOLDE", sid="SM" + "ab" * 16) == [BALANCE]
    first = phone.last_twiml
    assert phone.send("SOLDE", sid="SM" + "ab" * 16) == [BALANCE]
    assert phone.last_twiml == first                                  # the same callback reference too
    assert [n["kind"] for n in agents_see(tw, app, AWA)] == ["whatsapp_reply"]


def test_a_status_that_comes_before_the_reply_is_recorded_applies_once_it_is(
        tw: Settings, app: Flask, twilio: FakeTwilio, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    phone = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    form = phone.form("SOLDE")
    url = f"{TWILIO_PUBLIC_URL}/whatsapp/twilio"
    response = app.test_client().post("/whatsapp/twilio", data=form,
                                      headers={"X-Twilio-Signature": twilio_signature(twilio.auth_token, url, form)})
    twiml = response.get_data(as_text=True)
    assert twiml_messages(twiml) == [BALANCE]
    [(callback, _)] = twiml_actions(twiml)
    # Twilio's status outruns the record made once the answer has gone.
    assert post_twilio_status(app.test_client(), twilio.auth_token, callback,
                              status(AWA, "undelivered", "63016")) == 204
    assert agents_see(tw, app, AWA) == []
    response.close()                                                  # the answer has gone: recorded now
    product_clock.advance(seconds=2)
    assert worker.run_once(tw)["notifications_sent"] == 1
    assert provider.messages_to(AWA) == [BALANCE]


def test_a_twiml_reply_showing_a_prepaid_token_is_kept_sealed_and_never_marked_plain(
        tw: Settings, app: Flask, twilio: FakeTwilio, provider: FakeAfricasTalking,
        product_clock: SettableClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    [reply], url = reply_and_callback(app, twilio, PREPAID)
    assert GROUPED in reply
    reply_and_callback(app, twilio, AWA)                              # a bill summary: no secret
    rows = raw_rows(tw.database_url)
    assert GROUPED not in rows and GROUPED.replace(" ", "") not in rows and "Prépayé" not in rows
    [token_row] = [r for r in rows.splitlines() if PREPAID in r]
    [summary_row] = [r for r in rows.splitlines() if AWA in r]
    assert '"reply_plain": true' not in token_row and '"reply_plain": true' in summary_row
    # Still within the hour: the token reaches the customer by SMS when WhatsApp could not bring it.
    assert post_twilio_status(app.test_client(), twilio.auth_token, url, status(PREPAID, "undelivered", "63016")) == 204
    product_clock.advance(seconds=2)
    worker.run_once(tw)
    [sms] = provider.messages_to(PREPAID)
    assert GROUPED in sms
    assert GROUPED not in caplog.text and PREPAID not in caplog.text   # neither the token nor the number logged
