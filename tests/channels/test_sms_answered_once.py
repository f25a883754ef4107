# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""An SMS, or a WhatsApp message, is answered exactly once, even across a Redis restart.

- An SMS whose reply the SMS API took at once leaves a row in the product's database, so Africa's Talking posting
  the same message again after Redis restarted empty (the answer ledger forgot it) gets no second reply, and what
  it did (an alert subscription asked for, its confirmation) is not done again.
- A copy delivered in the moment between the answer and its row, just after Redis restarted empty, finds the
  message claimed (a row written before the message ran) and runs nothing: AT SMS 503 (posted again later, it finds
  the answer recorded: 200, nothing sent), Twilio an empty TwiML, Meta a 503 likewise (delivered again, it is
  acknowledged with nothing sent).
- The database refusing the claim once Redis forgot: nothing says whether the message is new, so nothing runs and
  the channel answers "not now" in its own format (AT SMS and Meta: 503, they post it again; Twilio: a 200 TwiML
  asking the customer to send it again); the message is answered once the database is back.

Over HTTP into the real Flask apps in the providers' wire formats, against the fake SMS, Twilio and Graph APIs on
loopback, a redis-server of the test's own (stopped and started again: empty), the real back office and the
product's database."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app.factory import create_app
from app.settings import Settings
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph
from tests.support.fake_twilio import FakeTwilio
from tests.support.throwaway_redis import ThrowawayRedis

from .sms_phone import SmsPhone
from .test_whatsapp_inbox import (  # noqa: F401 - fixtures of that module
    AWA,
    BALANCE_BUTTONS,
    START,
    TRY_AGAIN,
    meta_settings,
    twilio_settings,
)
from .whatsapp_phones import TWILIO_PUBLIC_URL, MetaWhatsAppPhone, TwilioWhatsAppPhone, twilio_signature

pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)
SMS_BALANCE = "Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures"
TWILIO_BALANCE = "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures\n0. Retour 00. Accueil"


@pytest.fixture
def sms_once(sms_settings: Settings, throwaway_redis: ThrowawayRedis) -> Settings:
    """SMS through the fake Africa's Talking, sessions and the answer ledger in a Redis the test restarts."""
    return replace(sms_settings, redis_url=throwaway_redis.url, secret_key="answered-once-test-key")


def _restarted_empty(redis: ThrowawayRedis) -> None:
    redis.stop()
    redis.start()


def _alert_rows(settings: Settings) -> int:
    """What asking for alerts left in the database for Awa (subscriptions and their history, messages queued)."""
    with create_engine(settings.database_url).connect() as db:
        return sum(db.execute(text(f"SELECT COUNT(*) FROM {table} WHERE msisdn = :n"), {"n": AWA}).scalar_one()
                   for table in ("subscriptions", "consent_changes", "outbox_events"))


def test_an_sms_answered_at_once_and_posted_again_after_redis_restarted_empty_gets_no_second_reply(
        sms_once: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis) -> None:
    awa = SmsPhone(create_app(sms_once).test_client(), fake_at, AWA)
    [confirmed] = awa.send("ALERTES ON")
    alerts, done = awa.last_id, _alert_rows(sms_once)
    assert awa.say("SOLDE") == SMS_BALANCE
    solde = awa.last_id
    _restarted_empty(throwaway_redis)
    assert awa.send("ALERTES ON", message_id=alerts) == [] and awa.last_status == 200
    assert awa.send("SOLDE", message_id=solde) == [] and awa.last_status == 200
    assert fake_at.messages_to(AWA) == [confirmed, SMS_BALANCE]         # one reply each
    assert _alert_rows(sms_once) == done                                 # and nothing done again


def test_an_sms_posted_again_between_its_reply_and_its_record_just_after_redis_restarted_gets_no_second_reply(
        sms_once: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis) -> None:
    app = create_app(sms_once)
    awa, provider_again = SmsPhone(app.test_client(), fake_at, AWA), SmsPhone(app.test_client(), fake_at, AWA)
    fake_at.hold = threading.Event()         # the reply reaches the SMS API; the callback waits for its answer
    first = threading.Thread(target=awa.send, args=("SOLDE", "ATXid_in_window"))
    first.start()
    while not fake_at.messages_to(AWA):
        first.join(0.01)
    _restarted_empty(throwaway_redis)
    # Claimed, its answer not recorded yet: the provider is asked to post it again later, nothing runs now.
    assert provider_again.send("SOLDE", message_id="ATXid_in_window") == []
    assert provider_again.last_status == 503
    fake_at.hold.set()
    first.join(30)
    assert awa.last_status == 200
    # Posted again once the first delivery answered: nothing more.
    assert provider_again.send("SOLDE", message_id="ATXid_in_window") == []
    assert provider_again.last_status == 200
    assert fake_at.messages_to(AWA) == [SMS_BALANCE]


def test_twilio_a_message_posted_again_before_its_twiml_answer_is_recorded_gets_an_empty_answer(
        twilio_settings: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis) -> None:
    app = create_app(twilio_settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    form = awa.form("SOLDE")
    headers = {"X-Twilio-Signature": _twilio_signature(awa, form)}
    # The TwiML answer is out; what runs once it has gone (its record) has not run yet.
    answered = app.test_client().post("/whatsapp/twilio", data=form, headers=headers)
    assert TWILIO_BALANCE in answered.get_data(as_text=True)
    _restarted_empty(throwaway_redis)
    assert awa.post(form) == [] and awa.last_status == 200                   # Twilio posting it again
    answered.close()
    assert awa.post(form) == [] and awa.last_status == 200


def _twilio_signature(phone: TwilioWhatsAppPhone, form: dict[str, str]) -> str:
    return twilio_signature(phone.token, f"{TWILIO_PUBLIC_URL}/whatsapp/twilio", form)


def test_meta_a_message_delivered_again_while_its_reply_is_being_sent_just_after_redis_restarted_gets_nothing(
        meta_settings: Settings, graph: FakeGraph, throwaway_redis: ThrowawayRedis) -> None:
    app = create_app(meta_settings)
    awa, meta_again = MetaWhatsAppPhone(app.test_client(), graph, AWA), MetaWhatsAppPhone(app.test_client(), graph, AWA)
    event = awa.event(awa.message("text", {"body": "SOLDE"}))
    again: list[list[str]] = []

    def delivered_again(message: dict[str, Any]) -> None:
        graph.before_answer = None
        _restarted_empty(throwaway_redis)
        again.append(meta_again.post(event))
    graph.before_answer = delivered_again
    assert awa.post(event) == [BALANCE_BUTTONS] and awa.last_status == 200
    # Claimed, its answer not recorded yet: nothing sent, Meta asked to deliver it again (it does, for days).
    assert again == [[]] and meta_again.last_status == 503
    assert meta_again.post(event) == [] and meta_again.last_status == 200    # answered by then: nothing more


def _claims_refused(settings: Settings) -> None:
    """The product's database refuses the claims (their table gone), as a database down would."""
    with create_engine(settings.database_url).begin() as db:
        db.execute(text("ALTER TABLE message_claims RENAME TO message_claims_away"))


def _claims_back(settings: Settings) -> None:
    with create_engine(settings.database_url).begin() as db:
        db.execute(text("ALTER TABLE message_claims_away RENAME TO message_claims"))


def test_sms_with_the_database_refusing_once_redis_forgot_nothing_runs_and_the_provider_is_asked_again(
        sms_once: Settings, fake_at: FakeAfricasTalking) -> None:
    awa = SmsPhone(create_app(sms_once).test_client(), fake_at, AWA)
    _claims_refused(sms_once)
    assert awa.send("SOLDE") == [] and awa.last_status == 503
    _claims_back(sms_once)
    assert awa.send("SOLDE", message_id=awa.last_id) == [SMS_BALANCE]   # posted again: answered, once
    assert awa.last_status == 200


def _tables_away(settings: Settings, *tables: str) -> None:
    """The product's database refuses these tables (renamed), as a database gone down would."""
    with create_engine(settings.database_url).begin() as db:
        for table in tables:
            db.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))


def _tables_back(settings: Settings, *tables: str) -> None:
    with create_engine(settings.database_url).begin() as db:
        for table in tables:
            db.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))


def test_an_owed_sms_reply_whose_mark_redis_lost_is_sent_once_when_the_provider_posts_the_message_again(
        sms_once: Settings, fake_at: FakeAfricasTalking, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    awa = SmsPhone(create_app(sms_once).test_client(), fake_at, AWA)

    def everything_down() -> None:
        # The message was claimed and ran; as its reply goes, the SMS API fails and the database goes down.
        fake_at.on_send, fake_at.fail_next = None, 100
        _tables_away(sms_once, "outbox_events", "message_claims")
    fake_at.on_send = everything_down
    assert awa.send("SOLDE") == [] and awa.last_status == 503       # neither sent nor queued: owed to the retry
    solde = awa.last_id
    _restarted_empty(throwaway_redis)                                # ... and Redis forgets the reply is owed
    _tables_back(sms_once, "outbox_events", "message_claims")
    fake_at.fail_next = 0
    product_clock.advance(seconds=30)
    # Africa's Talking posts it again within two minutes of the claim: not "handled" (it would stop posting it).
    assert awa.send("SOLDE", message_id=solde) == [] and awa.last_status == 503
    product_clock.advance(seconds=100)
    assert awa.send("SOLDE", message_id=solde) == [SMS_BALANCE] and awa.last_status == 200
    assert awa.send("SOLDE", message_id=solde) == [] and awa.last_status == 200
    assert fake_at.messages_to(AWA) == [SMS_BALANCE]                 # the reply, once


def test_twilio_with_the_database_refusing_once_redis_forgot_the_customer_is_asked_to_send_it_again(
        twilio_settings: Settings, twilio: FakeTwilio) -> None:
    awa = TwilioWhatsAppPhone(create_app(twilio_settings).test_client(), AWA, token=twilio.auth_token)
    _claims_refused(twilio_settings)
    assert awa.send("SOLDE") == [TRY_AGAIN] and awa.last_status == 200
    _claims_back(twilio_settings)
    assert awa.send("SOLDE") == [TWILIO_BALANCE]


def test_meta_with_the_database_refusing_once_redis_forgot_nothing_is_sent_and_meta_delivers_it_again(
        meta_settings: Settings, graph: FakeGraph) -> None:
    awa = MetaWhatsAppPhone(create_app(meta_settings).test_client(), graph, AWA)
    event = awa.event(awa.message("text", {"body": "SOLDE"}))
    _claims_refused(meta_settings)
    assert awa.post(event) == [] and awa.last_status == 503
    _claims_back(meta_settings)
    assert awa.post(event) == [BALANCE_BUTTONS] and awa.last_status == 200
