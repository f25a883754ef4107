"""Transcripts of the limits' counter (the throttle's Redis) unreachable while the sessions, the database and the
back office work: a prepaid caller asking a first-PIN code and a caller linking an account read the product's
"our systems are unavailable, try again in a few minutes" screen in their language, no code is sent uncounted
(no SMS in the outbox), and the log says which step met an unavailable back end, the number masked."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from flask import Flask

from app.factory import create_app
from app.settings import Settings
from engine import RedisSessionStore

from ..support.ports import closed_port

PREPAID = "+221770000003"        # the prepaid meter 3000001's registered number, no PIN yet, French
STRANGER = "+221770009077"       # linked to no account
DOWN_FR = "END Nos systèmes sont indisponibles. Merci de réessayer dans quelques minutes."
DOWN_EN = "END Our systems are unavailable. Please try again in a few minutes."


@pytest.fixture
def app(settings: Settings) -> Flask:
    """Sessions in the test's Redis; everything else that speaks Redis (the throttle) at a closed port."""
    assert settings.redis_url is not None
    closed = replace(settings, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    return create_app(closed, store=RedisSessionStore.from_url(settings.redis_url))


def codes_queued(app: Flask, kind: str) -> int:
    return sum(1 for row in app.extensions["parts"]["deps"].outbox.pending() if row["kind"] == kind)


def test_a_first_pin_code_with_the_counter_down_is_not_sent_and_the_caller_is_told_to_come_back(
        app, phone, caplog):
    p = phone(PREPAID)
    p.dial()
    p.answer("8")
    with caplog.at_level(logging.WARNING):
        assert p.answer("3") == DOWN_FR
    assert codes_queued(app, "pin_code") == 0
    assert "step security.send_pin_code: back end unavailable user=+2217*****003" in caplog.text
    assert PREPAID not in caplog.text


def test_an_account_link_with_the_counter_down_is_not_tried_and_the_caller_is_told_in_english(
        app, phone, settings, caplog):
    # Chosen while Redis was up (a language change drops the number's cached identity there).
    create_app(settings).extensions["parts"]["deps"].preferences.set_language(STRANGER, "en")
    p = phone(STRANGER)
    assert p.dial().startswith("CON Welcome to ElecNet.")
    p.answer("1")
    p.answer("2000003")
    with caplog.at_level(logging.WARNING):
        assert p.answer("46100") == DOWN_EN      # the right amount: not even checked while uncounted
    assert codes_queued(app, "link_code") == 0
    assert "step account.link: back end unavailable user=+2217*****077" in caplog.text
    assert STRANGER not in caplog.text
