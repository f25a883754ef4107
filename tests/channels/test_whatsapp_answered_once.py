# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""A WhatsApp reply is never given twice nor lost, whichever way it went.

- A reply the webhook gave at once (Twilio's TwiML, Meta's Graph messages: not through the outbox) leaves a row in
  the product's database once it has gone, so the same message posted again after Redis restarted empty (the answer
  ledger forgot it) is not answered a second time.
- Meta's reply the webhook sent that Meta then reports refused, outside the 24-hour window, goes by SMS, once, as a
  reply the worker sent does: also when that status comes back while the webhook is still being answered (before
  the reply is recorded), and when Meta refuses it at once.
- A long reply WhatsApp delivered in part, whose later part went by SMS "(suite)": an earlier part reported
  undelivered after that SMS has gone still reaches the customer by SMS, once, whether the later part was reported
  undelivered or refused at once.

Against the fake Twilio and Graph APIs and the fake Africa's Talking SMS API on loopback (Twilio's SDK and our
clients talking to them over sockets), signed as Twilio and Meta sign, a redis-server of the test's own (stopped and
started again: empty), the real back office and the product's database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import make_sessions
from app.storage.models import OutboxEventRow
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph
from tests.support.fake_twilio import FakeTwilio
from tests.support.throwaway_redis import ThrowawayRedis

from .test_whatsapp_inbox import (  # noqa: F401 - fixtures of both modules
    AWA,
    BALANCE,
    BALANCE_BUTTONS,
    START,
    _graph_texts,
    _twilio_texts,
    meta_settings,
    twilio_settings,
)
from .test_whatsapp_parts_by_sms import STRANGER, kept, long_screens, the_screen_in_time  # noqa: F401
from .whatsapp_phones import MetaWhatsAppPhone, TwilioWhatsAppPhone, twilio_reports

pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)
BILLS = "Factures (choisissez):"


def _redis_restarted_empty(redis: ThrowawayRedis) -> None:
    redis.stop()
    redis.start()


def test_twilio_a_message_answered_in_the_twiml_and_posted_again_after_redis_restarted_empty_gets_no_second_answer(
        twilio_settings: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis) -> None:
    awa = TwilioWhatsAppPhone(create_app(twilio_settings).test_client(), AWA, token=twilio.auth_token)
    assert awa.say("SOLDE") == BALANCE
    sid = awa.last_sid
    assert awa.say("1").startswith(BILLS)
    _redis_restarted_empty(throwaway_redis)
    assert awa.send("SOLDE", sid=sid) == [] and awa.last_status == 200     # the database knows it was answered
    assert awa.send("1", sid=awa.last_sid) == [] and awa.last_status == 200
    assert _twilio_texts(twilio, AWA) == []                                   # and nothing went another way


def test_meta_a_message_answered_at_once_and_delivered_again_after_redis_restarted_empty_gets_no_second_answer(
        meta_settings: Settings, graph: FakeGraph, throwaway_redis: ThrowawayRedis) -> None:
    awa = MetaWhatsAppPhone(create_app(meta_settings).test_client(), graph, AWA)
    assert awa.say("SOLDE") == BALANCE_BUTTONS
    solde = awa.last_id
    _redis_restarted_empty(throwaway_redis)
    assert awa.send("SOLDE", message_id=solde) == [] and awa.last_status == 200
    assert _graph_texts(graph, AWA) == [BALANCE_BUTTONS]
    assert worker.run_once(meta_settings).get("notifications_sent") is None    # nothing queued to send either


def _meta_reply_row(settings: Settings) -> OutboxEventRow:
    with make_sessions(settings.database_url)() as db:
        [row] = db.scalars(select(OutboxEventRow).where(OutboxEventRow.msisdn == AWA))
        return row


def test_meta_a_reply_reported_outside_the_window_while_the_webhook_is_answered_goes_by_sms_once(
        meta_settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    meta = MetaWhatsAppPhone(app.test_client(), graph, AWA)     # Meta's status webhook, another connection
    early: list[int] = []

    def outside_the_window(message: dict[str, Any]) -> None:
        graph.before_answer = None
        early.append(meta.status(message["id"], "failed", 131047))
    graph.before_answer = outside_the_window
    # Meta delivered the message late (its webhook retried for a day): the reply is refused, said in a status
    # Meta posts before it has even answered the send.
    assert awa.say("SOLDE") == BALANCE_BUTTONS
    assert early == [200]
    assert provider.messages_to(AWA) == []
    product_clock.advance(seconds=2)
    assert worker.run_once(meta_settings)["notifications_sent"] == 1
    [sms] = provider.messages_to(AWA)
    assert sms == BALANCE                                                     # the reply, by SMS
    row = _meta_reply_row(meta_settings)
    assert (row.kind, row.status, row.channel) == ("whatsapp_reply", "sent", "sms")
    # The same status again sends nothing more.
    assert meta.status(graph.messages_to(AWA.lstrip("+"))[0]["id"], "failed", 131047) == 200
    assert worker.run_once(meta_settings).get("notifications_sent") is None
    assert len(provider.messages_to(AWA)) == 1


def test_meta_a_reply_reported_outside_the_window_after_the_webhook_answered_goes_by_sms(
        meta_settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    awa = MetaWhatsAppPhone(create_app(meta_settings).test_client(), graph, AWA)
    assert awa.say("SOLDE") == BALANCE_BUTTONS
    assert awa.status(awa.last_sent()["id"], "failed", 131047) == 200
    assert "outside the 24-hour window (meta 131047)" in (_meta_reply_row(meta_settings).last_error or "")
    product_clock.advance(seconds=2)
    assert worker.run_once(meta_settings)["notifications_sent"] == 1
    assert provider.messages_to(AWA) == [BALANCE]


def test_meta_a_reply_delivered_stays_sent_on_whatsapp_and_nothing_goes_by_sms(
        meta_settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    awa = MetaWhatsAppPhone(create_app(meta_settings).test_client(), graph, AWA)
    assert awa.say("SOLDE") == BALANCE_BUTTONS
    assert awa.status(awa.last_sent()["id"], "delivered") == 200
    row = _meta_reply_row(meta_settings)
    assert (row.status, row.channel, row.delivery_status, row.sealed) == ("sent", "whatsapp", "delivered", None)
    product_clock.advance(seconds=2)
    assert worker.run_once(meta_settings).get("notifications_sent") is None
    assert provider.messages_to(AWA) == []


def test_meta_a_reply_refused_for_good_at_once_goes_by_sms_with_the_reason_kept(
        meta_settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    awa = MetaWhatsAppPhone(create_app(meta_settings).test_client(), graph, AWA)
    graph.next_errors[:] = [(400, 131047)]
    event = awa.event(awa.message("text", {"body": "SOLDE"}))
    assert awa.post(event) == [] and awa.last_status == 200
    row = _meta_reply_row(meta_settings)
    assert (row.status, row.channel) == ("pending", "sms")
    assert row.last_error == "whatsapp: part 1 of 1 refused for good by meta at once; sent by SMS"
    assert awa.post(event) == [] and awa.last_status == 200                  # delivered again: nothing more
    product_clock.advance(seconds=2)
    assert worker.run_once(meta_settings)["notifications_sent"] == 1
    assert provider.messages_to(AWA) == [BALANCE]


def _undelivered(form: dict[str, str]) -> dict[str, str]:
    """Twilio's status callback about one part, saying it could not be delivered: outside the 24-hour window."""
    return form | {"MessageStatus": "undelivered", "SmsStatus": "undelivered", "ErrorCode": "63016"}


def test_an_earlier_part_reported_undelivered_after_the_rest_went_by_sms_reaches_the_customer_by_sms_once(
        long_screens: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    answered = the_screen_in_time(long_screens, twilio)
    twilio.callbacks.clear()
    kept(long_screens, twilio, throwaway_redis)
    product_clock.advance(seconds=5)
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    first, second, third = list(twilio.callbacks)
    twilio.callbacks[:] = [(second[0], _undelivered(second[1])), third]
    client = create_app(long_screens).test_client()
    assert twilio_reports(client, twilio) == [204, 204]
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert provider.messages_to(STRANGER) == ["(suite) " + answered[1]]
    # The first part's report comes last: outside the window too.
    twilio.callbacks[:] = [(first[0], _undelivered(first[1]))]
    assert twilio_reports(client, twilio) == [204]
    product_clock.advance(seconds=1)
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert provider.messages_to(STRANGER) == ["(suite) " + answered[1], answered[0]]
    # Reported again, it sends nothing more; WhatsApp sent nothing again.
    twilio.callbacks[:] = [(first[0], _undelivered(first[1]))]
    assert twilio_reports(client, twilio) == [204]
    assert worker.run_once(long_screens).get("notifications_sent") is None
    assert len(provider.messages_to(STRANGER)) == 2
    assert _twilio_texts(twilio, STRANGER) == answered


def test_an_earlier_part_reported_undelivered_after_a_later_one_was_refused_at_once_reaches_the_customer_by_sms(
        long_screens: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    answered = the_screen_in_time(long_screens, twilio)
    twilio.callbacks.clear()
    kept(long_screens, twilio, throwaway_redis)

    def outside_the_window_for_the_next_part() -> None:
        twilio.before_answer = None
        twilio.next_error.append((400, 63016, "Outside the allowed window."))
    twilio.before_answer = outside_the_window_for_the_next_part
    product_clock.advance(seconds=5)
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert provider.messages_to(STRANGER) == ["(suite) " + "\n".join(answered[1:])]
    [first] = list(twilio.callbacks)
    twilio.callbacks[:] = [(first[0], _undelivered(first[1]))]
    assert twilio_reports(create_app(long_screens).test_client(), twilio) == [204]
    product_clock.advance(seconds=1)
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert provider.messages_to(STRANGER) == ["(suite) " + "\n".join(answered[1:]), answered[0]]
