# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""A chat message is answered once even across a Redis restart: the Rasa server sending a message again after
the answer ledger's Redis restarted empty runs nothing (no second code by SMS), and is told the message was
answered already. The action server on a redis-server of the test's own (stopped and started again: empty), the
product's database, the fake Africa's Talking on loopback."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.throwaway_redis import ThrowawayRedis

from .rasa_visitor import AWA, FRONT_SECRET, TOKEN, action_app, code_in, sms, visitor  # noqa: F401

SENT = "Un code a été envoyé par SMS au +2217*****001. Tapez-le ici (valable 5 minutes)."
ANSWERED = "Ce message a déjà reçu sa réponse. Envoyez 00 pour revenir au menu."


@pytest.fixture
def chat_settings(settings: Settings, provider: FakeAfricasTalking, throwaway_redis: ThrowawayRedis) -> Settings:
    """The action server with its answer ledger, codes and sign-ins in a Redis the test restarts."""
    return replace(settings, rasa_action_token=TOKEN, rasa_identity_secret=FRONT_SECRET,
                   at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   quiet_hours="", redis_url=throwaway_redis.url)


def test_the_chat_server_sending_a_message_again_after_redis_restarted_empty_sends_no_second_code(
        visitor, sms, throwaway_redis: ThrowawayRedis) -> None:
    awa = visitor()
    assert awa.say("77 000 00 01", message_id="number-1") == SENT
    [message] = sms(AWA)
    throwaway_redis.stop()
    throwaway_redis.start()                                               # empty: the ledger forgot
    assert awa.say("77 000 00 01", message_id="number-1") == ANSWERED      # the chat server's repeat
    assert awa.say("77 000 00 01", message_id="number-1") == ANSWERED
    assert sms(AWA) == [message]                                          # one SMS, one code
    # A new message runs as ever.
    assert awa.say("77 000 00 01", message_id="number-2") == SENT
    assert len(sms(AWA)) == 2
