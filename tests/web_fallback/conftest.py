"""The product with its web fallback, the fake SMS provider the sign-in codes go through, and a
visitor signed in with the code it caught."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from flask import Flask

from app.factory import build_dispatcher, create_app
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking, fake_africastalking

from .web_visitor import WebVisitor


@pytest.fixture
def provider() -> Iterator[FakeAfricasTalking]:
    with fake_africastalking() as fake:
        yield fake


@pytest.fixture
def web_settings(settings: Settings, provider: FakeAfricasTalking) -> Settings:
    return replace(settings, at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   secret_key="test-web-secret", quiet_hours="")


@pytest.fixture
def web_app(web_settings: Settings) -> Flask:
    return create_app(web_settings)


@pytest.fixture
def sms_code(web_app: Flask, web_settings: Settings, provider: FakeAfricasTalking) -> Callable[[str], str]:
    """Deliver the outbox as the worker does; the last sign-in code the phone ``number`` received."""
    dispatcher = build_dispatcher(web_settings, web_app.extensions["parts"]["db"])

    def latest(number: str) -> str:
        dispatcher.run_once()
        codes = [m for m in provider.messages_to(number) if "code" in m]
        assert codes, f"no SMS to {number}"
        found = re.search(r"\b(\d{6})\b", codes[-1])
        assert found, codes[-1]
        return found.group(1)

    return latest


@pytest.fixture
def visitor(web_app: Flask) -> Callable[..., WebVisitor]:
    """A new browser (its own cookies) on the product, from ``address``."""
    return lambda address="127.0.0.1": WebVisitor(web_app.test_client(), address)


@pytest.fixture
def signed_in(visitor: Callable[[], WebVisitor], sms_code: Callable[[str], str]) -> Callable[[str], WebVisitor]:
    def sign_in(number: str) -> WebVisitor:
        browser = visitor()
        browser.open()
        browser.ask_code(number)
        browser.sign_in(sms_code(number))
        assert browser.status == 200, browser.page()
        return browser

    return sign_in
