"""The budget of sign-in codes for requesters nobody has identified is one for every process and every door: two
engine server processes (gunicorn, the web sign-in) and a chat action server on one Redis spend the same
minute's codes. Asked over HTTP like a browser and a Rasa server; the SMS counted at the fake Africa's Talking
once the worker delivered the outbox."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
from sanic import Sanic

from app.actions_server import build_action_app
from app.factory import build_dispatcher
from app.settings import Settings
from tests.channels.rasa_visitor import TOKEN, Visitor
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.web_fallback.web_visitor import visible_text

from ..support.services import gunicorn_servers

SECRET = "test-code-budget-secret"     # the outbox's seal is derived from it: the worker here opens the codes
BUSY_FR = "Trop de codes demandés en ce moment : aucun code n'a été envoyé."


@pytest.fixture
def budgeted(settings: Settings, provider: FakeAfricasTalking) -> Settings:
    return replace(settings, secret_key=SECRET, sign_in_codes_per_minute=3, sign_in_codes_per_hour=100,
                   rasa_action_token=TOKEN, at_api_key=provider.api_key, at_username=provider.username,
                   at_api_url=provider.url, quiet_hours="", send_rates="africastalking=1000")


@pytest.fixture
def two_servers(budgeted: Settings) -> Iterator[list[str]]:
    env = {**os.environ, "DATABASE_URL": budgeted.database_url, "REDIS_URL": budgeted.redis_url or "",
           "BACKOFFICE_URL": budgeted.backoffice_url, "PAYMENT_CALLBACK_SECRET": "test-callback-secret",
           "SECRET_KEY": SECRET, "SIGN_IN_CODES_PER_MINUTE": "3", "SIGN_IN_CODES_PER_HOUR": "100",
           "LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with gunicorn_servers(env) as urls:
        yield urls


@pytest.fixture
def chat(budgeted: Settings) -> Iterator[Sanic]:
    app = build_action_app(budgeted)
    yield app
    Sanic.unregister_app(app)


def ask_on_the_web(url: str, number: str) -> tuple[int, str]:
    """A new browser on ``url`` asks a code for ``number``: the status of the page it lands on, and its text."""
    browser = requests.Session()
    page = browser.get(f"{url}/web/", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert csrf, page.text
    answer = browser.post(f"{url}/web/code", data={"csrf": csrf.group(1), "phone": number}, timeout=10)
    return answer.status_code, visible_text(answer.text)


def test_two_server_processes_and_the_chat_spend_one_budget(two_servers, chat, budgeted, provider):
    first, second = two_servers
    asked = [ask_on_the_web(first, "+221770000101"), ask_on_the_web(second, "+221770000102")]
    assert [status for status, _ in asked] == [200, 200]
    assert Visitor(chat).say("77 000 01 03").startswith("Un code a été envoyé par SMS au")
    # The minute's three codes are spent, whichever process or door asks next.
    late = [ask_on_the_web(second, "+221770000104"), ask_on_the_web(first, "+221770000105")]
    assert [status for status, _ in late] == [503, 503]
    assert all(BUSY_FR in text for _, text in late)
    assert Visitor(chat).say("77 000 01 06").startswith(BUSY_FR)
    dispatcher = build_dispatcher(budgeted, chat.ctx.parts["db"])
    while dispatcher.run_once(limit=500).sent:
        pass
    assert sorted(m.to for m in provider.sent) == ["+221770000101", "+221770000102", "+221770000103"]
