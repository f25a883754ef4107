"""The product with its web fallback, the fake SMS provider the sign-in codes go through, a visitor
signed in with the code it caught (Flask client), and a headless Chromium on the served product."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, sync_playwright

from app.factory import build_dispatcher, create_app
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.services import need_binary, serve_wsgi

from .web_visitor import WebVisitor


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


def need_chromium() -> str:
    """The Debian chromium Playwright drives (it downloads no browser of its own here): installed with
    apt-get when missing and allowed (root), else the tests skip, or fail under REQUIRE_SERVICES=1."""
    if shutil.which("chromium") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        for command in (install, ["apt-get", "update"], install):
            done = subprocess.run(command, capture_output=True, check=False, timeout=900)
            if done.returncode == 0 and shutil.which("chromium"):
                break
    return need_binary("chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the browser tests' module (closed after it, so Playwright's event loop
    is gone before other tests run); each test opens its own context (its own cookies)."""
    path = need_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def served_web(web_app: Flask) -> Iterator[str]:
    """The product on a loopback port; the ``/web/`` address."""
    with serve_wsgi(web_app) as url:
        yield f"{url}/web/"


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(locale="fr-FR")
    try:
        yield context.new_page()
    finally:
        context.close()
