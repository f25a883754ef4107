"""A customer with several accounts chooses one once per conversation: the next command they send
(SMS keyword, chatbot intent) within the channel's idle window acts on it without asking again;
past the window, or on a new USSD dial, the choice is asked again. Over the Redis and the
in-process session stores, against the real back office."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sanic import Sanic

from app.actions_server import build_action_app
from app.factory import create_app
from app.settings import Settings
from engine.store import MemorySessionStore
from tests.support.clock import SettableClock
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.redis_time import age_keys

from .rasa_chat import RasaChat
from .sms_phone import SmsPhone

SAHEL = "+221770000002"      # three accounts: 2000001, 2000002, 2000003
CHOOSE_EN = "Choose an account:\n1. 2000001 DKR-PLATEAU\n2. 2000002 THIES-NORD\n3. 2000003 DKR-PLATEAU"
TOKEN, SECRET = "rasa-action-token-for-tests", "front-channel-identity-secret"


@pytest.fixture
def product_clock(backoffice_seeded_at) -> SettableClock:
    """Every test here moves time on: the engine's and the back office's clock, set by the test."""
    return SettableClock(backoffice_seeded_at + timedelta(minutes=5))


@pytest.fixture(params=["redis", "memory"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sms_settings(settings: Settings, fake_at: FakeAfricasTalking, store_kind: str) -> Settings:
    wired = replace(settings, at_username=fake_at.username, at_api_key=fake_at.api_key, at_api_url=fake_at.url)
    return wired if store_kind == "redis" else replace(wired, redis_url="")


@pytest.fixture
def idle(product_clock: SettableClock, redis_url: str, store_kind: str) -> Callable[[float], None]:
    """The customer says nothing for ``seconds``: the product's clock moves on, and what Redis keeps expires."""
    def wait(seconds: float) -> None:
        product_clock.advance(seconds=seconds)
        if store_kind == "redis":
            age_keys(redis_url, seconds, prefix="conv:")
    return wait


@pytest.fixture
def deps(sms_app: Flask) -> Any:
    return sms_app.extensions["parts"]["deps"]


# ---------------------------------------------------------------- SMS
def test_an_sms_command_after_choosing_an_account_answers_for_that_account_without_asking(
        texter: Callable[[str], SmsPhone]):
    sahel = texter(SAHEL)
    assert sahel.say("BALANCE") == CHOOSE_EN
    assert sahel.say("2").startswith("Account 2000002\nBalance due: ")
    assert sahel.say("USAGE").startswith("Reading ")
    assert sahel.say("ALERTS ON").startswith("Alerts on by SMS for account 2000002:")
    assert sahel.say("BALANCE").startswith("Account 2000002\nBalance due: ")


def test_a_command_a_few_minutes_after_an_answer_that_ended_still_uses_the_account(texter, idle):
    sahel = texter(SAHEL)
    sahel.say("BALANCE")
    sahel.say("3")
    assert sahel.say("ALERTS OFF") == "Alerts off for account 2000003. Send ALERTS ON to get them again."
    idle(200)                     # past an ended conversation's two minutes, within the five of the window
    assert sahel.say("ALERTS ON").startswith("Alerts on by SMS for account 2000003:")


def test_past_the_idle_window_the_account_is_asked_again(texter, idle):
    sahel = texter(SAHEL)
    sahel.say("BALANCE")
    sahel.say("2")
    idle(301)                     # SMS_SESSION_IDLE_SECONDS is 300
    assert sahel.say("USAGE") == CHOOSE_EN
    sahel.say("2")
    assert sahel.say("ALERTS OFF") == "Alerts off for account 2000002. Send ALERTS ON to get them again."
    idle(301)
    assert sahel.say("ALERTS OFF") == CHOOSE_EN


def test_the_account_can_still_be_switched_from_the_main_menu_and_the_new_one_is_kept(texter, deps):
    deps.pins.set_pin(SAHEL, "2468")
    sahel = texter(SAHEL)
    sahel.say("BALANCE")
    sahel.say("2")
    assert sahel.say("menu").startswith("ElecNet - 2000002\n")
    assert sahel.say("9").startswith("Enter your PIN")
    assert sahel.say("2468").startswith(CHOOSE_EN)
    assert sahel.say("1").startswith("ElecNet - 2000001\n")
    assert sahel.say("BALANCE").startswith("Account 2000001\nBalance due: ")


def test_an_account_named_with_the_command_wins_over_the_one_chosen(texter):
    sahel = texter(SAHEL)
    sahel.say("BALANCE")
    sahel.say("2")
    assert sahel.say("BALANCE 2000003").startswith("Account 2000003\nBalance due: ")


def test_another_customer_never_gets_the_account_chosen(texter):
    sahel = texter(SAHEL)
    sahel.say("BALANCE")
    sahel.say("2")
    assert texter("+221770000001").say("ALERTS OFF") == (
        "Alertes désactivées pour le compte 1000001. Envoyez ALERTES ON pour les reprendre.")


# ---------------------------------------------------------------- USSD
def test_a_new_ussd_dial_asks_for_the_account_again(settings: Settings, store_kind: str):
    app = create_app(settings if store_kind == "redis" else replace(settings, redis_url=""))
    phone = UssdPhone(app.test_client(), SAHEL)
    assert phone.dial().startswith("CON Choose an account:")
    assert phone.answer("2").startswith("CON ElecNet - 2000002")
    assert phone.dial().startswith("CON Choose an account:")


# ---------------------------------------------------------------- the chatbot
@pytest.fixture
def action_app(settings: Settings, store_kind: str) -> Iterator[Sanic]:
    wired = replace(settings, rasa_action_token=TOKEN, rasa_identity_secret=SECRET)
    app = build_action_app(wired, None if store_kind == "redis" else MemorySessionStore())
    yield app
    Sanic.unregister_app(app)


def test_the_chatbot_keeps_the_account_chosen_when_another_intent_comes_mid_chat(action_app):
    sahel = RasaChat(action_app, TOKEN, "conv-sahel-kept", SAHEL, SECRET, "en")
    assert sahel.say("what do I owe", intent="check_balance") == "Choose an account:"
    assert sahel.press("2000002 THIES-NORD").startswith("Account 2000002\nBalance due: ")
    assert sahel.say("how much power did I use", intent="check_consumption").startswith("Reading ")
    assert sahel.say("home") == "ElecNet - 2000002"
    assert sahel.say("and my balance?", intent="check_balance").startswith("Account 2000002\nBalance due: ")


def test_the_chatbot_asks_again_past_its_idle_window(action_app, idle):
    sahel = RasaChat(action_app, TOKEN, "conv-sahel-idle", SAHEL, SECRET, "en")
    sahel.say("what do I owe", intent="check_balance")
    sahel.press("2000002 THIES-NORD")
    idle(901)                     # RASA_SESSION_IDLE_SECONDS is 900
    assert sahel.say("how much power did I use", intent="check_consumption") == "Choose an account:"
