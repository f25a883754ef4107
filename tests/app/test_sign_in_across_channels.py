"""The web's and the chat's sign-in, two doors to one product on one Redis: what they count together and what
each counts alone. The limits per number are one for both doors (an attacker switching doors against one phone
number gets no more codes nor guesses); the limits per requester (the client address) are each door's own, so
a customer whose address used up the web's allowance (a family, an office behind one address) can still sign
in in the chat, and the other way round. A browser on the web fallback, a web chat whose front channel signs the
browser's address, the SMS caught at the fake Africa's Talking once the worker delivered the outbox."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import redis
from flask import Flask
from sanic import Sanic

from app.actions_server import build_action_app
from app.factory import build_dispatcher, create_app
from app.settings import Settings
from tests.channels.rasa_visitor import FRONT_SECRET, TOKEN, FrontedVisitor
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.web_fallback.web_visitor import WebVisitor
from web_fallback.customer.sign_in import legacy_number_key, number_key

AWA = "+221770000001"
HOUSE = "203.0.113.7"               # one address for the household's browser and its web chat
CODE_PAGE = "Entrez le code reçu par SMS"
WEB_THROTTLED = "Trop d'essais. Réessayez dans quelques minutes."
CHAT_CODE_SENT = "Un code a été envoyé par SMS au +2217*****001. Tapez-le ici (valable 5 minutes)."
CHAT_THROTTLED = "Trop de tentatives. Merci de réessayer dans 15 minutes."
CHAT_SIGNED_IN = ["Numéro vérifié. Envoyez « déconnexion » pour quitter.", "ElecNet - 1000001"]


@pytest.fixture
def doors(settings: Settings, provider: FakeAfricasTalking) -> Settings:
    """Both doors on the test's Redis, the budget of codes for everyone out of the way (it has its tests)."""
    assert settings.redis_url
    return replace(settings, rasa_action_token=TOKEN, rasa_identity_secret=FRONT_SECRET,
                   at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   quiet_hours="", secret_key="test-doors-secret", sign_in_codes_per_minute=1000,
                   sign_in_codes_per_hour=1000, send_rates="africastalking=1000")


@pytest.fixture
def web(doors: Settings) -> Flask:
    return create_app(doors)


@pytest.fixture
def chat(doors: Settings) -> Iterator[Sanic]:
    app = build_action_app(doors)
    yield app
    Sanic.unregister_app(app)


@pytest.fixture
def sms_to(web: Flask, doors: Settings, provider: FakeAfricasTalking) -> Callable[[str], list[str]]:
    """The SMS ``number`` has received, once the worker delivered the outbox (one outbox for both doors)."""
    dispatcher = build_dispatcher(doors, web.extensions["parts"]["db"])

    def received(number: str) -> list[str]:
        while dispatcher.run_once(limit=500).sent:
            pass
        return provider.messages_to(number)

    return received


def code_in(message: str) -> str:
    found = re.search(r"\b(\d{6})\b", message)
    assert found, message
    return found.group(1)


def browser(web: Flask, address: str = HOUSE) -> WebVisitor:
    visitor = WebVisitor(web.test_client(), address)
    visitor.open()
    return visitor


def test_an_address_that_used_up_the_webs_allowance_still_signs_in_in_the_chat(web, chat, sms_to):
    house = browser(web)
    for n in range(10):                       # ten numbers asked from the household's address: the web's allowance
        assert house.ask_code(f"+2217700002{n:02d}").startswith(CODE_PAGE)
        house.post("/web/other-number")
    assert WEB_THROTTLED in house.ask_code(AWA)
    assert house.status == 429
    # The chat, from the same address, is another door with its own allowance: Awa signs in there.
    awa = FrontedVisitor(chat, HOUSE)
    assert awa.say("77 000 00 01") == CHAT_CODE_SENT
    assert awa.answers(code_in(sms_to(AWA)[-1])) == CHAT_SIGNED_IN


def test_an_address_that_used_up_the_chats_allowance_still_signs_in_on_the_web(web, chat, sms_to):
    said = [FrontedVisitor(chat, HOUSE).say(f"77 000 03 {n:02d}") for n in range(11)]
    assert [s.startswith("Un code a été envoyé") for s in said] == [True] * 10 + [False]
    assert said[10] == CHAT_THROTTLED
    house = browser(web)
    assert house.ask_code("77 000 00 01").startswith(CODE_PAGE)
    assert house.sign_in(code_in(sms_to(AWA)[-1])).startswith("ElecNet - 1000001")


def test_one_numbers_codes_are_capped_across_both_doors(web, chat, sms_to):
    # Three codes a quarter of an hour for a number, whichever door asks: two on the web, one in the chat.
    assert browser(web, "198.51.100.1").ask_code(AWA).startswith(CODE_PAGE)
    assert FrontedVisitor(chat, "198.51.100.2").say("77 000 00 01") == CHAT_CODE_SENT
    assert browser(web, "198.51.100.3").ask_code(AWA).startswith(CODE_PAGE)
    # A fourth is refused at both doors, from any address.
    late = browser(web, "198.51.100.4")
    assert WEB_THROTTLED in late.ask_code(AWA) and late.status == 429
    assert FrontedVisitor(chat, "198.51.100.5").say("77 000 00 01") == CHAT_THROTTLED
    assert len(sms_to(AWA)) == 3


def test_one_numbers_guesses_are_capped_across_both_doors(web, chat, sms_to):
    guesser = browser(web, "198.51.100.1")
    guesser.ask_code(AWA)
    code = code_in(sms_to(AWA)[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(10):                       # ten codes typed for the number: its allowance of a quarter hour
        guesser.sign_in(wrong)
    # The chat does not start the count again: a code sent there, the right one typed, is refused for now.
    awa = FrontedVisitor(chat, "198.51.100.2")
    assert awa.say("77 000 00 01") == CHAT_CODE_SENT
    assert awa.answers(code_in(sms_to(AWA)[-1])) == [CHAT_THROTTLED]


# ---------------------------------------------------------------- the number's counter renamed, no window reset
# The counter per number was named for the web (``web:send:number:+221…``) while both doors used it; it is
# ``signin:…`` now. A window counted under the old name by the release before still counts until it ends.
def counted_the_old_way(web: Flask, what: str, times: int) -> None:
    """The previous release's counting of ``times`` attempts for Awa's number, on the shared throttle."""
    throttle = web.extensions["parts"]["deps"].throttle
    for _ in range(times):
        throttle.hit(legacy_number_key(what, AWA), 10, 900)


def test_a_number_locked_under_the_counters_old_name_stays_locked_at_both_doors(web, chat, sms_to):
    counted_the_old_way(web, "send", 3)               # three codes a quarter of an hour: locked before the change
    late = browser(web, "198.51.100.1")
    assert WEB_THROTTLED in late.ask_code(AWA) and late.status == 429
    assert FrontedVisitor(chat, "198.51.100.2").say("77 000 00 01") == CHAT_THROTTLED
    assert sms_to(AWA) == []
    # The old window ends (and the refusals counted meanwhile with it): the number gets a code again.
    throttle = web.extensions["parts"]["deps"].throttle
    throttle.reset(legacy_number_key("send", AWA))
    throttle.reset(number_key("send", AWA))
    assert browser(web, "198.51.100.3").ask_code(AWA).startswith(CODE_PAGE)
    assert len(sms_to(AWA)) == 1


def test_what_a_number_counted_under_the_old_name_counts_with_the_new_and_only_the_new_moves(web, chat, sms_to,
                                                                                            redis_url):
    counted_the_old_way(web, "send", 2)
    assert FrontedVisitor(chat, "198.51.100.2").say("77 000 00 01") == CHAT_CODE_SENT   # the window's third
    late = browser(web, "198.51.100.1")
    assert WEB_THROTTLED in late.ask_code(AWA) and late.status == 429
    assert len(sms_to(AWA)) == 1
    kept = redis.Redis.from_url(redis_url)
    assert kept.get(f"throttle:{legacy_number_key('send', AWA)}") == b"2"      # read, never written
    assert kept.get(f"throttle:{number_key('send', AWA)}") == b"2"             # the code sent and the refusal
    kept.close()


def test_a_numbers_guesses_locked_under_the_old_name_refuse_even_the_right_code(web, chat, sms_to):
    house = browser(web, "198.51.100.1")
    assert house.ask_code(AWA).startswith(CODE_PAGE)
    counted_the_old_way(web, "check", 10)             # ten codes typed for the number before the change
    assert WEB_THROTTLED in house.sign_in(code_in(sms_to(AWA)[-1]))
