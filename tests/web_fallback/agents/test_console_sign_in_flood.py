"""Hammering one number's web sign-in: each refusal by the number's limit is counted in the metrics, but the
security audit keeps one ``sign_in_throttled`` row for the number's window, and an agent looking the number up
in the console still reads it."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.web_fallback.web_visitor import WebVisitor

from .test_console import AWA, lookup

ONE_ROW = "code request: more than 3 for this number in 15 min: refused till it ends"


def ask_code(app: Flask, address: str, number: str) -> int:
    browser = WebVisitor(app.test_client(), address)
    browser.open()
    browser.ask_code(number)
    return browser.status


def test_fifty_refused_code_requests_leave_one_event_the_console_shows(agents_app: Flask,
                                                                        agent: tuple[FlaskClient, str]) -> None:
    # From 53 addresses, so the number's limit (3 per 15 minutes) is what refuses, not an address's.
    statuses = [ask_code(agents_app, f"198.51.100.{n + 1}", "77 000 00 01") for n in range(53)]
    assert statuses == [200] * 3 + [429] * 50
    audit = agents_app.extensions["parts"]["security"]
    throttled = [(e.kind, e.channel, e.detail) for e in audit.for_subject(AWA) if e.kind == "sign_in_throttled"]
    assert throttled == [("sign_in_throttled", "web", ONE_ROW)]
    client, token = agent
    page = lookup(client, token, AWA).get_data(as_text=True)
    assert page.count("sign_in_throttled") == 1 and ONE_ROW in page
    metrics = agents_app.extensions["metrics"].registry
    assert metrics.get_sample_value("sign_in_throttled_total", {"channel": "web", "attempt": "request"}) == 50


def test_one_address_asking_for_many_numbers_leaves_one_event_for_the_address(agents_app: Flask) -> None:
    # One address, a new number each time: its limit (10 per 15 minutes) refuses, once in the audit.
    statuses = [ask_code(agents_app, "203.0.113.7", f"+22177{n:07d}") for n in range(30)]
    assert statuses == [200] * 10 + [429] * 20
    audit = agents_app.extensions["parts"]["security"]
    rows = [(n, e.detail) for n in range(30) for e in audit.for_subject(f"+22177{n:07d}")
            if e.kind == "sign_in_throttled"]
    assert rows == [(10, "code request: more than 10 from this address in 15 min: refused till it ends")]
    metrics = agents_app.extensions["metrics"].registry
    assert metrics.get_sample_value("sign_in_throttled_total", {"channel": "web", "attempt": "request"}) == 20
