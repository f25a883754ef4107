# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""SMS pumping through the chat's sign-in: whoever talks to the Rasa server chooses the conversation id, so
minting one per message asks codes for as many local numbers as one likes, each under its number's limit and
its conversation's. The codes sent to requesters nobody has identified yet are a budget a minute and an hour
(``SIGN_IN_CODES_PER_MINUTE``, ``SIGN_IN_CODES_PER_HOUR``), shared by every process through Redis: past it no
code goes out, the chat says to try again later, the audit notes it once, and a metric counts the refusals.
The SMS are counted where they arrive: at the fake Africa's Talking on loopback, after the worker's delivery."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from sanic import Sanic

from app.actions_server import build_action_app
from app.factory import build_dispatcher
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.outbox_drain import drain_outbox

from .rasa_chat import RasaChat
from .rasa_visitor import (  # noqa: F401
    AWA,
    FRONT_SECRET,
    TOKEN,
    FrontedVisitor,
    Visitor,
    chat_settings,
    code_in,
    security_events,
)

BUSY_FR = ("Trop de codes demandés en ce moment : aucun code n'a été envoyé. Merci de réessayer dans quelques "
           "minutes, ou composez le code USSD depuis votre téléphone.")
BUSY_EN = ("Too many codes are being asked for right now: no code was sent. Please try again in a few minutes, "
           "or dial the USSD code from your phone.")
CODE_SENT = "Un code a été envoyé par SMS au"


def local_number(n: int) -> str:
    """A mobile number of the service's country (Senegal, +221 77 ...), one per ``n``."""
    return f"+22177{n:07d}"


@pytest.fixture
def budgeted(chat_settings: Settings) -> Settings:
    """Three codes a minute and five an hour for everyone not signed in (production: 20 and 300)."""
    return replace(chat_settings, sign_in_codes_per_minute=3, sign_in_codes_per_hour=5)


@pytest.fixture
def chat_app(budgeted: Settings) -> Iterator[Sanic]:
    app = build_action_app(budgeted)
    yield app
    Sanic.unregister_app(app)


@pytest.fixture
def delivered(chat_app: Sanic, budgeted: Settings, provider: FakeAfricasTalking) -> Callable[[], int]:
    """The worker delivers the whole outbox (no pacing in the way); how many SMS the provider has taken."""
    dispatcher = build_dispatcher(replace(budgeted, send_rates="africastalking=1000"), chat_app.ctx.parts["db"])

    def deliver() -> int:
        drain_outbox(dispatcher)
        return len(provider.sent)

    return deliver


def the_window_ends(app: Sanic, window: str) -> None:
    """The minute (or the hour) of the budget is over: its counter starts again (and its note of a refusal ends
    with it), as when its window expires."""
    app.ctx.parts["deps"].throttle.reset(f"codes:unidentified:{window}")


def refused(app: Sanic, window: str) -> float:
    return app.ctx.metrics.registry.get_sample_value(
        "sign_in_codes_refused_total", {"channel": "rasa", "window": window}) or 0.0


def test_a_flood_of_minted_conversation_ids_sends_no_more_sms_than_the_budget(chat_app, delivered, provider):
    flood = [Visitor(chat_app, sender_id=f"bot-{uuid.uuid4().hex}") for _ in range(12)]
    said = [bot.say(local_number(n)) for n, bot in enumerate(flood)]
    assert [s.startswith(CODE_SENT) for s in said] == [True] * 3 + [False] * 9
    assert said[3:] == [BUSY_FR] * 9
    assert delivered() == 3
    assert [m.to for m in provider.sent] == [local_number(0), local_number(1), local_number(2)]
    assert refused(chat_app, "minute") == 9
    # One security event for the spent minute, not one per refused request (the audit is no second thing to fill).
    assert security_events(chat_app, local_number(3)) == [
        ("codes_throttled", "rasa", "more than 3 sign-in codes a minute: refused till it ends")]
    assert all(security_events(chat_app, local_number(n)) == [] for n in range(4, 12))


def test_after_the_minute_a_real_user_gets_a_code_and_the_hour_caps_what_a_patient_flood_sends(
        chat_app, delivered, provider):
    for n in range(6):
        Visitor(chat_app, sender_id=f"bot-{uuid.uuid4().hex}").say(local_number(n))
    assert delivered() == 3
    the_window_ends(chat_app, "minute")
    awa = Visitor(chat_app)
    assert awa.say("77 000 00 01").startswith(CODE_SENT)
    delivered()
    assert awa.answers(code_in(provider.messages_to(AWA)[-1]))[1] == "ElecNet - 1000001"
    # The next minute's flood gets one more code: the hour's five are then spent, whatever the minute allows.
    said = [Visitor(chat_app, sender_id=f"bot-{uuid.uuid4().hex}").say(local_number(n)) for n in range(10, 14)]
    assert [s.startswith(CODE_SENT) for s in said] == [True, False, False, False]
    the_window_ends(chat_app, "minute")
    english = Visitor(chat_app, language="en")
    assert english.say("+221 77 000 00 02") == BUSY_EN
    assert delivered() == 5
    assert refused(chat_app, "hour") == 4
    assert security_events(chat_app, local_number(11)) == [
        ("codes_throttled", "rasa", "more than 5 sign-in codes an hour: refused till it ends")]
    assert all(security_events(chat_app, number) == [] for number in (local_number(12), local_number(13)))
    the_window_ends(chat_app, "hour")
    assert english.say("+221 77 000 00 02").startswith("A code was sent by SMS to")
    assert delivered() == 6


def test_customers_signed_in_or_vouched_for_are_not_stopped_by_a_spent_budget(chat_app, delivered, provider):
    awa = Visitor(chat_app)
    awa.say("770000001")
    for n in range(5):
        Visitor(chat_app, sender_id=f"bot-{uuid.uuid4().hex}").say(local_number(n))
    assert refused(chat_app, "minute") == 3
    delivered()
    assert awa.answers(code_in(provider.messages_to(AWA)[-1]))[1] == "ElecNet - 1000001"
    assert awa.press("Solde et factures").startswith("Compte 1000001\nÀ payer: 12 500 FCFA")
    vouched = RasaChat(chat_app, TOKEN, "chat-awa-2", AWA, FRONT_SECRET)
    assert vouched.say("mon solde", intent="check_balance").startswith("Compte 1000001\nÀ payer: 12 500 FCFA")


@pytest.fixture
def roomy_app(chat_settings: Settings) -> Iterator[Sanic]:
    app = build_action_app(replace(chat_settings, sign_in_codes_per_minute=100, sign_in_codes_per_hour=100))
    yield app
    Sanic.unregister_app(app)


def test_an_address_the_front_signs_is_the_requester_whatever_conversation_ids_it_mints(roomy_app):
    said = [FrontedVisitor(roomy_app, "203.0.113.7").say(local_number(n)) for n in range(11)]
    assert [s.startswith(CODE_SENT) for s in said] == [True] * 10 + [False]
    assert said[10] == "Trop de tentatives. Merci de réessayer dans 15 minutes."
    # Another address is another requester; an address signed with another key is no address (the conversation
    # then counts, as without one).
    assert FrontedVisitor(roomy_app, "2001:db8::7").say(local_number(20)).startswith(CODE_SENT)
    forged = [FrontedVisitor(roomy_app, "203.0.113.7", secret="not-the-secret").say(local_number(30 + n))
              for n in range(2)]
    assert all(s.startswith(CODE_SENT) for s in forged)
