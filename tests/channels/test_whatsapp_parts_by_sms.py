"""A long WhatsApp reply that WhatsApp delivers only in part: SMS brings the parts the customer did not get, said
to be a continuation ("(suite)"), never the start again. Refused at once by Twilio at its second part, or
reported undelivered in the status callback of its second part (Twilio's 63016, outside the 24-hour window),
which finds its outbox row although the row names the first part.

Against the fake Twilio API and the fake Africa's Talking SMS API on loopback (the Twilio SDK talking to them
over sockets), a redis-server of the test's own (stopped so the webhook keeps the
message for the worker), the real back office and the product's database."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import make_sessions
from app.storage.models import OutboxEventRow
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_twilio import FakeTwilio
from tests.support.throwaway_redis import ThrowawayRedis

from .whatsapp_phones import (
    TWILIO_NUMBER,
    TwilioWhatsAppPhone,
    post_twilio_status,
    twilio_reports,
    twilio_sending,
    twiml_actions,
)

AWA = "+221770000001"
STRANGER = "+221770009991"      # a number linked to no account: the greeting and the offer to link one
BALANCE_BUTTONS = "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n[1 Dernières factures] [0 Retour] [00 Accueil]"
# One of our Meta numbers whose phone number id has 25 digits (Meta's ids are not bounded at 20).
LONG_PHONE_NUMBER_ID = "1065403522429221234567890"
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)
NOTICES = "\\n".join(f"Avis {n:02d}: travaux sur le réseau du quartier {n}, coupure prévue de 9 h à 12 h."
                      for n in range(1, 46))


@pytest.fixture
def long_screens(settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
                 throwaway_redis: ThrowawayRedis, tmp_path: Path) -> Settings:
    """WhatsApp through Twilio's fake, SMS through Africa's Talking's, sessions in a Redis the test stops; an
    operator whose greeting carries the week's works notices: the screen a stranger gets takes three messages."""
    menus = Path(settings.menus_path)
    source = menus.read_text(encoding="utf-8")
    plain = 'greeting: {fr: "Bienvenue chez {brand}", en: "Welcome to {brand}"}'
    assert plain in source
    long = f'greeting: {{fr: "Bienvenue chez {{brand}}\\n{NOTICES}", en: "Welcome to {{brand}}\\n{NOTICES}"}}'
    config = shutil.copytree(menus.parent, tmp_path / "config")
    (config / menus.name).write_text(source.replace(plain, long), encoding="utf-8")
    return replace(twilio_sending(settings, twilio, provider), redis_url=throwaway_redis.url,
                   secret_key="parts-by-sms-test-key", menus_path=str(config / menus.name))


def twilio_texts(twilio: FakeTwilio, msisdn: str) -> list[str]:
    return [m.get("Body", "") for m in twilio.sent if m.get("To") == f"whatsapp:{msisdn}"]


def the_screen_in_time(settings: Settings, twilio: FakeTwilio) -> list[str]:
    """The stranger's first screen as Twilio's webhook answers it in time: three messages."""
    answered = TwilioWhatsAppPhone(create_app(settings).test_client(), "+221770009992",
                                   token=twilio.auth_token).send("Bonjour")
    assert len(answered) == 3 and answered[0].startswith("Bienvenue chez ElecNet\nAvis 01: travaux")
    return answered


def kept(settings: Settings, twilio: FakeTwilio, redis: ThrowawayRedis) -> TwilioWhatsAppPhone:
    """The stranger writes while the session store is down: kept, answered later by the worker in three parts."""
    phone = TwilioWhatsAppPhone(create_app(settings).test_client(), STRANGER, token=twilio.auth_token)
    redis.stop()
    assert phone.send("Bonjour") == [] and phone.last_status == 200
    redis.start()
    return phone


def row_of(settings: Settings, msisdn: str) -> OutboxEventRow:
    with make_sessions(settings.database_url)() as db:
        [row] = db.scalars(select(OutboxEventRow).where(OutboxEventRow.msisdn == msisdn))
        return row


def test_a_second_part_twilio_refuses_at_once_sends_by_sms_only_the_rest_said_to_continue(
        long_screens: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    answered = the_screen_in_time(long_screens, twilio)
    kept(long_screens, twilio, throwaway_redis)

    def outside_the_window_for_the_next_part() -> None:
        twilio.before_answer = None
        twilio.next_error.append((400, 63016, "Outside the allowed window."))

    twilio.before_answer = outside_the_window_for_the_next_part
    product_clock.advance(seconds=5)
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert twilio_texts(twilio, STRANGER) == answered[:1]          # she read the first part on WhatsApp
    [sms] = provider.messages_to(STRANGER)
    assert sms == "(suite) " + "\n".join(answered[1:])             # and SMS brings the rest, not the start again
    row = row_of(long_screens, STRANGER)
    assert (row.status, row.channel) == ("sent", "sms")


def test_a_second_part_reported_undelivered_finds_its_row_and_only_it_goes_by_sms(
        long_screens: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    answered = the_screen_in_time(long_screens, twilio)
    twilio.callbacks.clear()
    kept(long_screens, twilio, throwaway_redis)
    product_clock.advance(seconds=5)
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert twilio_texts(twilio, STRANGER) == answered               # Twilio took the three parts ...
    posted = list(twilio.callbacks)
    assert len(posted) == 3
    second = posted[1][1]
    # ... delivered the first and the third, and reports the second undelivered: outside the 24-hour window.
    second |= {"MessageStatus": "undelivered", "SmsStatus": "undelivered", "ErrorCode": "63016"}
    assert second["MessageSid"] != row_of(long_screens, STRANGER).provider_message_id     # not the row's own id
    client = create_app(long_screens).test_client()
    assert twilio_reports(client, twilio) == [204, 204, 204]
    row = row_of(long_screens, STRANGER)
    assert (row.status, row.channel) == ("pending", "sms")
    assert "outside the 24-hour window (twilio 63016)" in (row.last_error or "")
    assert provider.messages_to(STRANGER) == []
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert provider.messages_to(STRANGER) == ["(suite) " + answered[1]]   # the part she did not get, only
    assert twilio_texts(twilio, STRANGER) == answered                     # nothing again on WhatsApp
    # The same report posted again sends nothing more.
    twilio.callbacks.append(posted[1])
    assert twilio_reports(client, twilio) == [204]
    assert worker.run_once(long_screens).get("notifications_sent") is None
    assert len(provider.messages_to(STRANGER)) == 1


def test_a_twiml_reply_s_second_part_reported_undelivered_sends_by_sms_that_part_only(
        long_screens: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    """The webhook's own answer in three ``<Message>``s: each names its own status callback, so Twilio's word on
    one part finds that part of the recorded reply."""
    phone = TwilioWhatsAppPhone(create_app(long_screens).test_client(), STRANGER, token=twilio.auth_token)
    answered = phone.send("Bonjour")
    assert len(answered) == 3
    callbacks = [url for url, _ in twiml_actions(phone.last_twiml)]
    assert len(set(callbacks)) == 3                                  # one reference per part
    client = create_app(long_screens).test_client()
    for url, state in zip(callbacks, ("delivered", "undelivered", "delivered"), strict=True):
        form = {"MessageSid": f"SM{len(state):032x}", "MessageStatus": state, "To": f"whatsapp:{STRANGER}", "From": f"whatsapp:{TWILIO_NUMBER}",
                **({"ErrorCode": "63016"} if state == "undelivered" else {})}
        assert post_twilio_status(client, twilio.auth_token, url, form) == 204
    row = row_of(long_screens, STRANGER)
    assert (row.kind, row.status, row.channel) == ("whatsapp_reply", "pending", "sms")
    product_clock.advance(seconds=2)
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert provider.messages_to(STRANGER) == ["(suite) " + answered[1]]   # the part she did not get, only
    assert twilio.sent == []                                              # nothing again on WhatsApp
