"""Transcripts of the security notices a customer must get once per event, never lost, never twice: what the
phone receives from the (fake) SMS provider once the worker delivered the outbox.

A chat channel's session key is the sender's, used again by every conversation of that sender; a hop may run
twice (the gateway's retry after a lost session save). Each notice's key names its event, so a hop run again
queues nothing new and a new event always does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import pytest
from flask import Flask

from app.factory import build_dispatcher, create_app
from app.settings import Settings
from app.storage import migrate
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.lost_save import store_lost_after_queuing
from tests.support.outbox_drain import drain_outbox
from tests.support.throwaway_redis import ThrowawayRedis

from .sms_phone import SmsPhone

HOLDER, STRANGER, PREPAID = "+221770000001", "+221770019101", "+221770000003"
LINKED = "Compte 1000001 lié à votre numéro."
NAV = "0. Retour 00. Accueil"


@pytest.fixture
def settings(settings: Settings, throwaway_redis: ThrowawayRedis) -> Settings:
    """Sessions on the test's own Redis, which a test may kill to lose a hop's save."""
    return replace(settings, redis_url=throwaway_redis.url, quiet_hours="")


@pytest.fixture
def received(sms_app: Flask, sms_settings: Settings, fake_at: FakeAfricasTalking) -> Callable[[str], list[str]]:
    """Every SMS a phone received so far, once the worker delivered what the outbox holds."""
    dispatcher = build_dispatcher(sms_settings, sms_app.extensions["parts"]["db"])

    def messages(number: str) -> list[str]:
        drain_outbox(dispatcher)
        return fake_at.messages_to(number)

    return messages


def link_by_sms(stranger: SmsPhone, received: Callable[[str], list[str]]) -> None:
    """The stranger links account 1000001 with its last bill and the code its holder was sent."""
    assert stranger.say("SOLDE").startswith("Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")
    stranger.say("1")
    stranger.say("1000001")
    assert stranger.say("5500").startswith("Un code a été envoyé par SMS au numéro du titulaire du compte")
    code = _code(received(HOLDER)[-1])
    assert stranger.say(code).startswith(LINKED)


def _code(sms: str) -> str:
    found = re.search(r"\b(\d{6})\b", sms)
    assert found, sms
    return found.group(1)


def notices(messages: list[str]) -> list[str]:
    return [m for m in messages if "ANNULER" in m]


def test_a_second_link_by_sms_of_an_account_its_holder_undid_is_told_to_the_holder_again(texter, received):
    stranger, holder = texter(STRANGER), texter(HOLDER)
    link_by_sms(stranger, received)
    [first] = notices(received(HOLDER))
    [undo] = re.findall(r"ANNULER \d{6}", first)
    assert holder.say(undo).startswith("Le numéro +2217*****101 n'est plus lié au compte 1000001.")
    # The same sender links it again, on the same session key: the holder hears of this link too.
    link_by_sms(stranger, received)
    assert len(notices(received(HOLDER))) == 2


def first_pin(phone: UssdPhone) -> str:
    """Preferences > Change my PIN on an account without one: proved by the last bill, a PIN typed once."""
    phone.dial()
    phone.answer("8")
    phone.answer("3")
    assert phone.answer("5500") == f"CON Premier usage: choisissez un code PIN secret (4 chiffres):\n{NAV}"
    return phone.answer("4821")


def test_the_pin_set_notice_comes_once_when_the_hop_that_set_it_ran_again_after_a_lost_save(
        sms_app, received, throwaway_redis):
    p = UssdPhone(sms_app.test_client(), HOLDER)
    first_pin(p)
    with store_lost_after_queuing(throwaway_redis, "pin_set"):
        assert p.answer("4821").startswith("CON ")
    p.post("*".join(p.inputs))          # the gateway's retry: the session as before the hop, the step runs again
    assert p.post("*".join(p.inputs)) == p.post("*".join(p.inputs))   # and a plain retry replays the answer
    assert received(HOLDER) == ["ElecNet: votre code PIN a été créé. Si ce n'est pas vous, appelez le 800 00 00."]


def test_a_first_pin_code_reaches_a_prepaid_caller_whose_gateway_session_id_is_the_longest_allowed(
        settings, postgres_url, fake_at):
    """On PostgreSQL (the column's length enforced): the gateway's 128-character session id, in the code's key."""
    migrate(postgres_url)
    on_postgres = replace(settings, database_url=postgres_url, at_username=fake_at.username,
                          at_api_key=fake_at.api_key, at_api_url=fake_at.url)
    app = create_app(on_postgres)
    p = UssdPhone(app.test_client(), PREPAID)
    p.session_id, p.inputs = "ATUid_" + "7" * 122, []
    p.post("")
    p.answer("8")
    assert p.answer("3").startswith("CON Premier usage. Un code de 6 chiffres vous a été envoyé par SMS.")
    drain_outbox(build_dispatcher(on_postgres, app.extensions["parts"]["db"]))
    [sms] = fake_at.messages_to(PREPAID)
    assert p.answer(_code(sms)) == f"CON Premier usage: choisissez un code PIN secret (4 chiffres):\n{NAV}"
