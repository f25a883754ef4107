"""SMS pumping through the web sign-in: many client addresses (a botnet's, or the many of one IPv6 network), each
asking codes for different local numbers, each under its address's and its number's limit. The codes sent to
visitors nobody has identified yet are one budget a minute and an hour with the chat's: past it no code goes,
the page says in the visitor's language to try again later (503, ``Retry-After``), the audit notes it once,
and ``sign_in_codes_refused_total`` counts the refusals. SMS counted at the fake Africa's Talking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from flask import Flask

from app.factory import build_dispatcher, create_app
from app.settings import Settings
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.outbox_drain import drain_outbox

from .web_visitor import WebVisitor

BUSY_FR = ("Trop de codes demandés en ce moment : aucun code n'a été envoyé. Réessayez dans quelques minutes, "
           "ou composez le code USSD depuis votre téléphone.")
BUSY_EN = ("Too many codes are being asked for right now: no code was sent. Please try again in a few minutes, "
           "or dial the USSD code from your phone.")


@pytest.fixture
def budgeted(web_settings: Settings) -> Settings:
    return replace(web_settings, sign_in_codes_per_minute=3, sign_in_codes_per_hour=5,
                   send_rates="africastalking=1000")


@pytest.fixture
def app(budgeted: Settings) -> Flask:
    return create_app(budgeted)


@pytest.fixture
def delivered(app: Flask, budgeted: Settings, provider: FakeAfricasTalking) -> Callable[[], int]:
    """The worker delivers the whole outbox; how many SMS the provider has taken."""
    dispatcher = build_dispatcher(budgeted, app.extensions["parts"]["db"])

    def deliver() -> int:
        drain_outbox(dispatcher)
        return len(provider.sent)

    return deliver


def ask(app: Flask, address: str, number: str, path: str = "/web/") -> WebVisitor:
    browser = WebVisitor(app.test_client(), address)
    browser.open(path)
    browser.ask_code(number)
    return browser


def test_a_flood_from_many_addresses_sends_no_more_sms_than_the_budget(app, delivered, provider):
    browsers = [ask(app, f"2001:db8:0:{n}::1", f"+22177{n:07d}") for n in range(10)]
    assert [b.status for b in browsers] == [200] * 3 + [503] * 7
    assert browsers[2].page().startswith("Entrez le code reçu par SMS")
    refused = browsers[3]
    assert BUSY_FR in refused.page() and "[tel phone]" in refused.page()
    assert refused.response is not None and refused.response.headers["Retry-After"] == "60"
    english = ask(app, "203.0.113.50", "+221770000001", "/web/?lang=en")
    assert english.status == 503 and BUSY_EN in english.page()
    assert delivered() == 3
    # A USSD caller, whose number the operator vouches for, is no unidentified requester: their code still goes.
    prepaid = UssdPhone(app.test_client(), "+221770000003")
    prepaid.dial("3"), prepaid.answer("1"), prepaid.answer("2000"), prepaid.answer("2")
    assert prepaid.answer("1").startswith("CON Premier usage. Un code de 6 chiffres vous a été envoyé par SMS.")
    assert delivered() == 4 and len(provider.messages_to("+221770000003")) == 1
    metrics = app.extensions["metrics"].registry
    assert metrics.get_sample_value("sign_in_codes_refused_total", {"channel": "web", "window": "minute"}) == 8
    audit = app.extensions["parts"]["security"]
    assert [(e.kind, e.detail) for e in audit.for_subject("+221770000003")] == [     # newest first
        ("code_sent", "first-PIN code sent"),                         # the prepaid caller's code, audited
        ("codes_throttled", "more than 3 sign-in codes a minute: refused till it ends")]
    assert audit.for_subject("+221770000004") == []


def test_a_real_visitor_gets_a_code_once_the_minute_is_over(app, delivered, provider):
    for n in range(3):
        ask(app, f"198.51.100.{n}", f"+22177{n:07d}")
    awa = ask(app, "203.0.113.9", "77 000 00 01")
    assert awa.status == 503
    throttle = app.extensions["parts"]["deps"].throttle
    throttle.reset("codes:unidentified:minute")      # the minute's window ends
    awa.post("/web/code", phone="77 000 00 01")
    assert awa.status == 200
    delivered()
    code = [m for m in provider.messages_to("+221770000001") if "code" in m][-1].split("est ")[1][:6]
    awa.sign_in(code)
    assert awa.page().startswith("ElecNet - 1000001")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_comes_back_as_its_minute_and_its_hour_end_in_the_embedded_default():
    from app.storage.throttle import MemoryThrottle
    from engine import SecurityEvent
    from web_fallback.customer import CodeBudget

    clock, events, refusals = Clock(), [], []

    class Audit:
        def record(self, event: SecurityEvent) -> None:
            events.append(event.detail)

    budget = CodeBudget(MemoryThrottle(clock), Audit(), per_minute=2, per_hour=3,
                        refused=lambda channel, window: refusals.append(window))
    assert [budget.spend("web", "+221770000001") for _ in range(4)] == [True, True, False, False]
    clock.now += 60
    assert [budget.spend("rasa", "+221770000002") for _ in range(3)] == [True, False, False]
    clock.now += 60
    assert budget.spend("web", "+221770000003") is False      # the hour's three are spent, a new minute or not
    clock.now += 3600
    assert budget.spend("web", "+221770000004") is True
    assert refusals == ["minute", "minute", "hour", "hour", "hour"]
    assert events == ["more than 2 sign-in codes a minute: refused till it ends",
                      "more than 3 sign-in codes an hour: refused till it ends"]


def test_the_addresses_of_one_ipv6_network_are_one_requester(web_settings, provider):
    # A subscriber's line gets a /64: its host half is theirs to vary, so each address of it is no new requester.
    app = create_app(replace(web_settings, sign_in_codes_per_minute=100))
    statuses = [ask(app, f"2001:db8:1:2::{n:x}", f"+22177{n:07d}").status for n in range(11)]
    assert statuses == [200] * 10 + [429]
    assert ask(app, "2001:db8:1:3::1", "+221770000100").status == 200     # the next /64: another line
    # IPv4 addresses as a dual-stack socket writes them (::ffff:a.b.c.d) stay one requester each.
    assert [ask(app, f"::ffff:198.51.100.{n}", f"+2217701{n:05d}").status for n in range(11)] == [200] * 11
