"""Signing in on the web while the sign-in limits' counter (the throttle's Redis) is down: a Redis of the
test's own, stopped mid-visit while the rest of the product (its codes, its sessions) stays up. The visitor
reads a clear "unavailable" on the page they were on, in their language, with a 503 (never a 500); no code
goes out and no code, not even the right one, signs anyone in while nothing counts the attempts."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask

from app.factory import create_app
from app.settings import Settings
from app.storage.throttle import RedisThrottle
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.throwaway_redis import ThrowawayRedis

from .test_web_sign_in import HOME_FR, code_page, sign_in_with
from .web_visitor import WebVisitor

AWA = "+221770000001"
UNAVAILABLE_FR = "Service momentanément indisponible. Réessayez dans un instant."
UNAVAILABLE_EN = "Service temporarily unavailable. Please try again shortly."
SIGN_IN_UNAVAILABLE_EN = ("Sign in\nYour electricity account without USSD: balance, bills, payment, outages.\n"
                          f"{UNAVAILABLE_EN}\nYour phone number\n"
                          "Example: 77 000 00 01. We will send you a code by SMS.\n[tel phone]\nSend me a code by SMS")


def code_page_with(notice: str, masked: str) -> str:
    first, rest = code_page(masked).split("\nCode à 6 chiffres", 1)
    return f"{first}\n{notice}\nCode à 6 chiffres{rest}"


@pytest.fixture
def web_app(web_settings: Settings, throwaway_counter: RedisThrottle) -> Flask:
    """The product (codes and sessions in the shared test Redis) with its limits counted in the throwaway one."""
    return create_app(web_settings, throttle=throwaway_counter)


def test_asking_a_code_while_the_counter_is_down_says_unavailable_in_french_and_english_and_sends_nothing(
        visitor, throwaway_redis, sms_code, provider: FakeAfricasTalking, caplog):
    caplog.set_level(logging.INFO)
    french, english = visitor(), visitor()
    french.open()
    english.open("/web/?lang=en")
    throwaway_redis.stop()
    # The sign-in form again, saying why, to try in a moment.
    assert french.ask_code("77 000 00 01") == sign_in_with(UNAVAILABLE_FR)
    assert french.status == 503
    assert english.ask_code("77 000 00 01") == SIGN_IN_UNAVAILABLE_EN
    assert english.status == 503
    with pytest.raises(AssertionError, match="no SMS"):
        sms_code(AWA)                                              # the worker delivered the outbox: nothing
    assert provider.sent == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "web: code not sent user=+2217*****001: BackendUnavailable" in logged and "770000001" not in logged
    # The counter back (restarted empty), the same visitor asks again and the code goes.
    throwaway_redis.start()
    assert french.ask_code("77 000 00 01") == code_page("+2217*****001")
    assert sms_code(AWA)


def test_no_code_signs_in_while_the_counter_is_down_not_even_the_right_one(
        visitor: Callable[..., WebVisitor], throwaway_redis: ThrowawayRedis, sms_code: Callable[[str], str]) -> None:
    browser: WebVisitor = visitor()
    browser.open()
    browser.ask_code("77 000 00 01")
    code = sms_code(AWA)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    throwaway_redis.stop()
    # Guesses are not let through uncounted: every one, the right code too, gets the same "unavailable".
    for typed in [wrong] * 5 + [code]:
        assert browser.sign_in(typed) == code_page_with(UNAVAILABLE_FR, "+2217*****001")
        assert browser.status == 503
    # Back (empty: the count starts again), the code the visitor holds still works, once: the guesses made
    # while nothing counted spent none of its three wrong tries, since none was checked.
    throwaway_redis.start()
    assert browser.sign_in(code) == HOME_FR
