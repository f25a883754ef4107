"""A late WhatsApp reply goes back the way the customer wrote, whichever provider sends the notifications: a
message written to our Twilio number is answered through Twilio, from that number, in Twilio's bodies; one written
to our Meta number through the Graph API, from that number, with Meta's buttons; the notifications keep their own
sender (Meta when both are configured). A reply whose provider is no longer configured goes by SMS (never from the
other provider's number, another chat with its own 24-hour window), or waits in the outbox while SMS cannot take it
either. Against the fake Twilio and Graph APIs and the fake Africa's Talking SMS API on loopback (the Twilio SDK and
the Graph client talking to them over sockets), a redis-server of the test's own (stopped so the webhook keeps the
message for the worker), the real back office and the product's database."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import SqlConsent, SqlOutbox, make_sessions
from app.storage.contacts import SqlContacts
from app.storage.models import OutboxEventRow
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph, readable
from tests.support.fake_twilio import FakeTwilio
from tests.support.throwaway_redis import ThrowawayRedis

from .whatsapp_phones import (
    PHONE_NUMBER_ID,
    TWILIO_NUMBER,
    MetaWhatsAppPhone,
    TwilioWhatsAppPhone,
    twilio_sending,
    whatsapp_settings,
)

AWA = "+221770000001"          # French, account 1000001
BALANCE = "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures\n0. Retour 00. Accueil"
BALANCE_BUTTONS = "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n[1 Dernières factures] [0 Retour] [00 Accueil]"
BILL = ("ElecNet: nouvelle facture pour le compte 1000001: 12 500 FCFA, à payer avant le 15/12/2026. "
        "Payez par *123#.")
SORRY = ("ElecNet: désolé, votre message WhatsApp du 26/11 09:00 n'a pas été traité à temps (incident technique). "
         "Merci de le renvoyer.")
# Second numbers of ours, one at each provider: the customer may write to any of them.
OUR_OTHER_TWILIO_NUMBER = "+14155238899"
OUR_OTHER_META_NUMBER = "106540352242999"
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)


@pytest.fixture
def both(settings: Settings, graph: FakeGraph, twilio: FakeTwilio, provider: FakeAfricasTalking,
         throwaway_redis: ThrowawayRedis) -> Settings:
    """Both WhatsApp providers configured to receive and to send (Meta with our number's id, so Meta sends the
    notifications; Twilio with its account and sender), SMS through its fake; sessions in a Redis the test stops
    and starts again; the web process and the worker share SECRET_KEY."""
    return replace(twilio_sending(whatsapp_settings(settings, graph), twilio, provider),
                   meta_phone_number_id=PHONE_NUMBER_ID, redis_url=throwaway_redis.url,
                   secret_key="reply-route-test-key")


def twilio_texts(twilio: FakeTwilio, msisdn: str) -> list[tuple[str, str]]:
    """What Twilio was asked to send to this WhatsApp number: from which of our numbers, and the body."""
    return [(m.get("From", ""), m.get("Body", "")) for m in twilio.sent if m.get("To") == f"whatsapp:{msisdn}"]


def graph_texts(graph: FakeGraph, msisdn: str) -> list[tuple[str, str]]:
    """What the Graph API was asked to send to this number: from which of our phone number ids, as read."""
    return [(m["phone_number_id"], readable(m)) for m in graph.messages_to(msisdn.lstrip("+"))]


def rows_of(settings: Settings, msisdn: str) -> list[dict[str, Any]]:
    """Each outbox row of ``msisdn`` as agents see it, oldest first."""
    with make_sessions(settings.database_url)() as db:
        return [{"kind": r.kind, "status": r.status, "channel": r.channel}
                for r in db.scalars(select(OutboxEventRow).where(OutboxEventRow.msisdn == msisdn)
                                    .order_by(OutboxEventRow.id))]


def bill_on_whatsapp(settings: Settings) -> None:
    """A bill notice (a notification, not a reply) queued for Awa, who wants them on WhatsApp."""
    sessions = make_sessions(settings.database_url)
    SqlConsent(sessions).opt_in(AWA, "bill_issued", "1000001", channel="ussd", source="menu")
    SqlContacts(sessions).set_channel(AWA, "whatsapp", via="ussd", source="menu")
    assert SqlOutbox(sessions).add(kind="bill_issued", msisdn=AWA, language="fr", dedupe_key="bill:1",
                                   payload={"account_number": "1000001", "amount": "12500", "due_date": "2026-12-15"})


def kept_on_twilio(settings: Settings, twilio: FakeTwilio, redis: ThrowawayRedis, text: str = "SOLDE",
                   ours: str = TWILIO_NUMBER) -> TwilioWhatsAppPhone:
    """Awa writes ``text`` to our Twilio number ``ours`` while the session store is down: kept for the worker."""
    awa = TwilioWhatsAppPhone(create_app(settings).test_client(), AWA, token=twilio.auth_token, ours=ours)
    redis.stop()
    assert awa.send(text) == [] and awa.last_status == 200
    redis.start()
    return awa


def kept_on_meta(settings: Settings, graph: FakeGraph, redis: ThrowawayRedis,
                 phone_number_id: str = PHONE_NUMBER_ID) -> MetaWhatsAppPhone:
    """Awa writes SOLDE to our Meta number ``phone_number_id`` while the session store is down: kept."""
    awa = MetaWhatsAppPhone(create_app(settings).test_client(), graph, AWA, phone_number_id=phone_number_id)
    redis.stop()
    assert awa.send("SOLDE") == [] and awa.last_status == 200
    redis.start()
    return awa


def test_with_both_configured_a_late_reply_to_twilio_goes_through_twilio_from_the_number_written_to(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    awa = kept_on_twilio(both, twilio, throwaway_redis, ours=OUR_OTHER_TWILIO_NUMBER)
    bill_on_whatsapp(both)
    product_clock.advance(seconds=5)
    done = worker.run_once(both)
    assert (done["kept_answered"], done["notifications_sent"]) == (1, 2)
    # The reply in the chat she wrote in, laid out as Twilio's TwiML would have held it ...
    assert twilio_texts(twilio, AWA) == [(f"whatsapp:{OUR_OTHER_TWILIO_NUMBER}", BALANCE)]
    # ... and the bill, a notification, through Meta as before.
    assert graph_texts(graph, AWA) == [(PHONE_NUMBER_ID, BILL)]
    assert provider.messages_to(AWA) == []
    # The conversation goes on in that chat, from the reply she read.
    assert awa.say("1").startswith("Factures (choisissez):\n1. novembre 2026 5 500 FCFA impayée\n")


def test_with_both_configured_a_late_reply_to_meta_goes_from_the_meta_number_written_to_with_its_buttons(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = kept_on_meta(both, graph, throwaway_redis, OUR_OTHER_META_NUMBER)
    product_clock.advance(seconds=5)
    assert worker.run_once(both)["notifications_sent"] == 1
    assert graph_texts(graph, AWA) == [(OUR_OTHER_META_NUMBER, BALANCE_BUTTONS)]
    assert twilio.sent == []
    assert awa.tap("1").startswith("Factures (choisissez):")     # its buttons work, answered from that number


def test_with_twilio_sending_the_notifications_a_late_reply_to_meta_still_goes_through_meta(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    twilio_notifies = replace(both, meta_phone_number_id="")     # no number of Meta's for notifications
    kept_on_meta(twilio_notifies, graph, throwaway_redis)
    bill_on_whatsapp(twilio_notifies)
    product_clock.advance(seconds=5)
    assert worker.run_once(twilio_notifies)["notifications_sent"] == 2
    assert graph_texts(graph, AWA) == [(PHONE_NUMBER_ID, BALANCE_BUTTONS)]
    assert twilio_texts(twilio, AWA) == [(f"whatsapp:{TWILIO_NUMBER}", BILL)]


def test_the_apology_for_a_message_kept_too_long_goes_back_through_twilio_too(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = TwilioWhatsAppPhone(create_app(both).test_client(), AWA, token=twilio.auth_token,
                              ours=OUR_OTHER_TWILIO_NUMBER)
    throwaway_redis.stop()
    awa.send("SOLDE")
    product_clock.advance(minutes=31)
    throwaway_redis.start()
    assert worker.run_once(both)["kept_late"] == 1
    assert twilio_texts(twilio, AWA) == [(f"whatsapp:{OUR_OTHER_TWILIO_NUMBER}", SORRY)]
    assert graph.sent == []


def test_a_reply_to_twilio_once_twilio_is_no_longer_configured_goes_by_sms_not_through_meta(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock, caplog: pytest.LogCaptureFixture) -> None:
    kept_on_twilio(both, twilio, throwaway_redis)
    without_twilio = replace(both, twilio_account_sid="", twilio_auth_token="", twilio_whatsapp_from="")
    product_clock.advance(seconds=5)
    with caplog.at_level(logging.WARNING, logger="notify"):
        assert worker.run_once(without_twilio)["notifications_sent"] == 1
    assert provider.messages_to(AWA) == [BALANCE]
    assert graph.sent == [] and twilio.sent == []
    assert rows_of(both, AWA) == [{"kind": "whatsapp_reply", "status": "sent", "channel": "sms"}]
    [said] = [r.getMessage() for r in caplog.records if "no longer configured" in r.getMessage()]
    assert "twilio" in said and AWA not in said and AWA[-3:] in said      # said, the number masked


def test_a_reply_to_meta_once_meta_is_no_longer_configured_goes_by_sms_not_through_twilio(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    kept_on_meta(both, graph, throwaway_redis)
    without_meta = replace(both, meta_access_token="", meta_phone_number_id="", meta_app_secret="")
    product_clock.advance(seconds=5)
    assert worker.run_once(without_meta)["notifications_sent"] == 1
    assert provider.messages_to(AWA) == [BALANCE]
    assert graph.sent == [] and twilio.sent == []


def test_a_reply_whose_provider_and_sms_are_both_gone_waits_and_goes_through_twilio_once_it_is_back(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    kept_on_twilio(both, twilio, throwaway_redis)
    nothing_but_meta = replace(both, twilio_account_sid="", twilio_whatsapp_from="", at_api_key="")
    product_clock.advance(seconds=5)
    assert worker.run_once(nothing_but_meta).get("notifications_retried") == 1
    assert graph.sent == [] and twilio.sent == [] and provider.sent == []
    assert rows_of(both, AWA) == [{"kind": "whatsapp_reply", "status": "pending", "channel": "whatsapp"}]
    product_clock.advance(seconds=10)             # past the outbox's backoff, Twilio configured again
    assert worker.run_once(both)["notifications_sent"] == 1
    assert twilio_texts(twilio, AWA) == [(f"whatsapp:{TWILIO_NUMBER}", BALANCE)]
    assert graph.sent == []


def test_replies_through_twilio_keep_twilio_s_rate_while_meta_sends_the_notifications(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    client = create_app(both).test_client()
    phones = [TwilioWhatsAppPhone(client, msisdn, token=twilio.auth_token) for msisdn in (AWA, "+221770000003")]
    throwaway_redis.stop()
    for phone in phones:
        assert phone.send("SOLDE") == []
    throwaway_redis.start()
    paced = replace(both, send_rates="africastalking=10,twilio=0.1,meta=100")     # Twilio: one per 10 s
    product_clock.advance(seconds=5)
    assert worker.run_once(paced).get("notifications_sent") == 1
    assert len(twilio.sent) == 1 and graph.sent == []   # the second reply waits for Twilio's next slot


def test_a_meta_number_id_of_25_digits_is_answered_from_that_number(
        both: Settings, twilio: FakeTwilio, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    # The inbox kept 20 characters of the number written to, and such a reply went from our configured number: it
    # keeps 64 now (migration v1_wa3).
    kept_on_meta(both, graph, throwaway_redis, "1" * 25)
    product_clock.advance(seconds=5)
    assert worker.run_once(both)["notifications_sent"] == 1
    assert graph_texts(graph, AWA) == [("1" * 25, BALANCE_BUTTONS)]
    assert twilio.sent == []
