"""Every one-time code a dialog sends is audited, the first as each one sent again: a USSD caller links an
account (a code to the holder), a prepaid caller asks for a first PIN (a code to themselves), a customer adds an
e-mail address (a code by e-mail). Each code sent is one ``code_sent`` security event under the caller's
pseudonym, once even when the gateway sends the same hop again, with no code, number or address in it or in the
log line; the agent who opens the customer's file sees them in the security events, beside the resends."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.factory import create_app
from app.settings import Settings
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_smtp import FakeSmtp

from .conftest import sign_in

STRANGER, PREPAID, AWA = "+221770019301", "+221770000003", "+221770000001"


@pytest.fixture
def app(agents_settings: Settings, provider: FakeAfricasTalking, mail: FakeSmtp) -> Flask:
    return create_app(replace(agents_settings, at_api_key=provider.api_key, at_username=provider.username,
                              at_api_url=provider.url, smtp_url=mail.url, quiet_hours=""))


@pytest.fixture
def security_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING, logger="security")
    yield caplog


def code_events(app: Flask, number: str) -> list[tuple[str, str, str]]:
    """The ``code_sent`` events of ``number`` as the audit keeps them, oldest first: (channel, account, detail)."""
    audit = app.extensions["parts"]["security"]
    return [(e.channel, e.account_number or "-", e.detail) for e in reversed(audit.for_subject(number))
            if e.kind == "code_sent"]


def retried(phone: UssdPhone) -> str:
    """The gateway sends the last hop again (its answer was slow to come back)."""
    return phone.post("*".join(phone.inputs))


def console_security_rows(app: Flask, number: str) -> list[str]:
    """The ``code_sent`` rows of the security events table of ``number``'s file in the agents' console, newest
    first, as text from the kind on: kind, channel, account, detail."""
    client: FlaskClient = app.test_client()
    token = sign_in(client, "Awa", "agent")
    page = client.post("/console/lookup", data={"kind": "phone", "q": number, "csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    table = page[page.index("security events"):]
    table = table[:table.index("</table>")]
    rows = [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)]
    return [row[row.index("code_sent"):] for row in rows if "code_sent" in row]   # from the kind on (not the time)


def test_a_link_code_is_audited_when_first_sent_once_whatever_the_retries_and_again_when_sent_again(
        app, security_log):
    p = UssdPhone(app.test_client(), STRANGER)
    p.dial()
    p.answer("1")
    p.answer("1000001")
    first = p.answer("5500")
    assert first.startswith("CON Un code a été envoyé par SMS au numéro du titulaire du compte")
    assert retried(p) == first and retried(p) == first
    assert code_events(app, STRANGER) == [("ussd", "1000001", "link code sent to the account holder")]
    assert p.answer("1").startswith("CON Nouveau code envoyé au titulaire du compte")
    assert code_events(app, STRANGER) == [("ussd", "1000001", "link code sent to the account holder"),
                                          ("ussd", "1000001", "link code sent again to the account holder")]
    codes = [row["payload"]["code"] for row in app.extensions["parts"]["deps"].outbox.pending()
             if row["kind"] == "link_code"]
    assert len(codes) == 2
    lines = [r.getMessage() for r in security_log.records if "code_sent" in r.getMessage()]
    assert len(lines) == 2
    assert not [line for line in lines for secret in (STRANGER, AWA, *codes) if secret in line], lines
    assert console_security_rows(app, STRANGER) == [
        "code_sent ussd 1000001 link code sent again to the account holder",
        "code_sent ussd 1000001 link code sent to the account holder"]


def test_a_first_pin_code_is_audited_once_when_first_sent_and_the_agent_sees_it(app):
    p = UssdPhone(app.test_client(), PREPAID)
    p.dial()
    p.answer("8")
    first = p.answer("3")
    assert first.startswith("CON Premier usage.")
    assert retried(p) == first
    assert code_events(app, PREPAID) == [("ussd", "3000001", "first-PIN code sent")]
    p.answer("1")                                           # an SMS that never came: sent again
    assert [detail for _, _, detail in code_events(app, PREPAID)] == ["first-PIN code sent",
                                                                      "first-PIN code sent again"]
    assert [row.split(" ", 3)[3] for row in console_security_rows(app, PREPAID)] == [
        "first-PIN code sent again", "first-PIN code sent"]


def test_an_email_code_is_audited_once_when_first_sent_without_the_address(app, security_log):
    p = UssdPhone(app.test_client(), AWA)
    p.dial()
    p.answer("8")
    p.answer("6")
    p.answer("4")
    first = p.answer("awa@exemple.sn")
    assert first.startswith("CON Un code a été envoyé à a***@exemple.sn.")
    assert retried(p) == first
    assert code_events(app, AWA) == [("ussd", "1000001", "e-mail code sent")]
    assert "awa@exemple.sn" not in security_log.text and AWA not in security_log.text
    assert console_security_rows(app, AWA) == ["code_sent ussd 1000001 e-mail code sent"]
