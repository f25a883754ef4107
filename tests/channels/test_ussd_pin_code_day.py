"""Transcripts of a prepaid caller's first-PIN codes over a day. Each session may send 3 codes; across sessions
one number gets ``PIN_CODES_PER_DAY`` (2 here), however often it redials. Past them the caller reads, in the
screen's language, that no more codes can be sent today and whom to call; no SMS goes (counted at the fake
Africa's Talking, as the worker delivers the outbox) and the audit notes it once. Another number is unaffected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from flask import Flask

from app.factory import build_dispatcher, create_app
from app.settings import Settings
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.redis_time import age_keys

PREPAID = "+221770000003"        # the prepaid meter 3000001's registered number, no PIN yet, French
ALSO_PREPAID = "+221770000033"   # another number linked to the same meter, English
NAV_FR, NAV_EN = "0. Retour 00. Accueil", "0. Back 00. Home"
CODE_SENT_FR = ("CON Premier usage. Un code de 6 chiffres vous a été envoyé par SMS. Entrez-le (valable 3 min):\n"
                f"1. Renvoyer le code\n{NAV_FR}")
CODE_SENT_EN = ("CON First use. A 6-digit code was just sent to you by SMS. Enter it (valid for 3 min):\n"
                f"1. Send the code again\n{NAV_EN}")
NO_MORE_FR = ("END Nous ne pouvons plus vous envoyer de code aujourd'hui. Pour votre code PIN, appelez le service "
              "client au 800 00 00.")
NO_MORE_EN = "END We cannot send you any more codes today. For your PIN, call customer service on 800 00 00."


@pytest.fixture
def day_settings(settings: Settings, provider: FakeAfricasTalking) -> Settings:
    return replace(settings, at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   quiet_hours="", send_rates="africastalking=1000", pin_codes_per_day=2)


@pytest.fixture
def app(day_settings: Settings) -> Flask:
    return create_app(day_settings)


@pytest.fixture
def delivered(app: Flask, day_settings: Settings, provider: FakeAfricasTalking) -> Callable[[str], int]:
    """The worker delivers the whole outbox; how many SMS the provider has taken for ``number``."""
    dispatcher = build_dispatcher(day_settings, app.extensions["parts"]["db"])

    def deliver(number: str) -> int:
        dispatcher.run_once(limit=100)
        return len(provider.messages_to(number))

    return deliver


def first_pin(p: UssdPhone) -> str:
    """A new session on Preferences > Change my PIN: what the PIN gate answers a caller without a PIN."""
    p.dial()
    p.answer("8")
    return p.answer("3")


def test_redials_past_the_days_codes_send_no_more_sms_and_another_number_is_unaffected(app, phone, delivered):
    awa = phone(PREPAID)
    assert first_pin(awa) == CODE_SENT_FR
    assert first_pin(awa) == CODE_SENT_FR                 # dropped, redialled: a second code, a new session
    assert delivered(PREPAID) == 2
    for _ in range(3):                                    # redials past the day's codes
        assert first_pin(awa) == NO_MORE_FR
    assert delivered(PREPAID) == 2

    deps = app.extensions["parts"]["deps"]
    deps.links.link(ALSO_PREPAID, "3000001", "self-service")
    deps.preferences.set_language(ALSO_PREPAID, "en")
    bob = phone(ALSO_PREPAID)
    assert first_pin(bob) == CODE_SENT_EN                 # another number: its own day
    assert first_pin(bob) == CODE_SENT_EN
    assert first_pin(bob) == NO_MORE_EN
    assert (delivered(ALSO_PREPAID), delivered(PREPAID)) == (2, 2)

    audit = app.extensions["parts"]["security"]
    assert [(e.kind, e.channel, e.detail) for e in audit.for_subject(PREPAID)] == [   # newest first
        ("pin_failed", "ussd", "first-PIN codes: more than 2 today for this number: refused till the day ends"),
        ("code_sent", "ussd", "first-PIN code sent"), ("code_sent", "ussd", "first-PIN code sent")]

    deps.throttle.reset(f"pin_code:phone:{PREPAID}")     # the day ends
    assert first_pin(awa) == CODE_SENT_FR
    assert delivered(PREPAID) == 3


def test_a_number_capped_late_in_its_day_and_again_the_next_day_is_audited_once_each_day(
        app, phone, delivered, day_settings):
    awa = phone(PREPAID)
    assert first_pin(awa) == CODE_SENT_FR                 # 08:00: the number's day starts with its first code
    age_keys(day_settings.redis_url, 12 * 3600)           # 20:00
    assert first_pin(awa) == CODE_SENT_FR
    assert first_pin(awa) == NO_MORE_FR                   # past the day's codes: noted
    assert first_pin(awa) == NO_MORE_FR                   # and again: counted, not noted again
    age_keys(day_settings.redis_url, 12 * 3600 + 1)       # 08:00 the next day: a new day for the number
    assert first_pin(awa) == CODE_SENT_FR
    assert first_pin(awa) == CODE_SENT_FR
    assert first_pin(awa) == NO_MORE_FR                   # 08:00, past the new day's codes: noted for this day
    assert delivered(PREPAID) == 4

    audit = app.extensions["parts"]["security"]
    assert [(e.kind, e.detail) for e in audit.for_subject(PREPAID)] == [                # newest first
        ("pin_failed", "first-PIN codes: more than 2 today for this number: refused till the day ends"),
        ("code_sent", "first-PIN code sent"), ("code_sent", "first-PIN code sent")] * 2
