"""The customer look-up console as agents use it: sign-in, roles, CSRF, audit rows, throttling, actions,
and hostile input answered with a clear HTML page (never a 500)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.settings import Settings
from app.storage import SqlOutbox, make_sessions, pseudonym
from app.storage.agent_console import AgentAuditRow, AgentRow
from app.storage.models import OutboxEventRow, PinCredentialRow, SecurityEventRow
from app.storage.pins import hash_pin

from .conftest import csrf_of, sign_in

AWA = "+221770000001"          # residential, account 1000001
BUSINESS = "+221770000002"     # three accounts 2000001-2000003


def lookup(client: FlaskClient, token: str, q: str, kind: str = "phone", **extra: str) -> TestResponse:
    return client.post("/console/lookup", data={"kind": kind, "q": q, "csrf_token": token, **extra},
                       follow_redirects=True)


def audit_rows(settings: Settings) -> list[AgentAuditRow]:
    with make_sessions(settings.database_url)() as db:
        return list(db.scalars(select(AgentAuditRow).order_by(AgentAuditRow.id)))


def test_the_console_asks_for_a_sign_in_and_the_local_one_is_marked_as_development(agents_app: Flask) -> None:
    client = agents_app.test_client()
    response = client.get("/console/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/agents/signin")
    page = client.get("/agents/signin").get_data(as_text=True)
    assert "DEVELOPMENT ONLY" in page and "Sign in (development)" in page
    assert "Sign in with your organisation" not in page   # no identity provider configured


def test_the_local_sign_in_is_not_offered_without_the_development_switch(settings: Settings) -> None:
    from app.factory import create_app

    client = create_app(settings).test_client()
    page = client.get("/agents/signin").get_data(as_text=True)
    assert "No sign-in is configured" in page and "development" not in page
    with client.session_transaction() as cookie:
        cookie["agent_csrf"] = "known"
    response = client.post("/agents/dev-signin", data={"name": "Eve", "role": "supervisor", "csrf_token": "known"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert client.get("/console/").status_code == 302


def test_an_agent_finds_a_customer_by_phone_with_accounts_language_and_pin_state(
        agent: tuple[FlaskClient, str], agents_settings: Settings) -> None:
    client, token = agent
    response = lookup(client, token, "77 000 00 01")     # as the customer says it, national format
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<span id="customer-number">+221770000001</span>' in page   # the number the agent typed
    assert "1000001" in page and "Awa Ndiaye" in page
    assert "locked: <strong>no</strong>" in page
    # The look-up is in the audit under the agent's name, the customer as the security pseudonym.
    row = audit_rows(agents_settings)[-1]
    assert (row.agent, row.role, row.action, row.outcome) == ("dev:awa", "agent", "view_customer", "ok")
    assert row.customer_id == pseudonym(agents_settings.secret_key, AWA)
    assert AWA not in row.detail


def test_the_audit_log_line_names_no_customer(agent: tuple[FlaskClient, str],
                                              caplog: pytest.LogCaptureFixture) -> None:
    client, token = agent
    with caplog.at_level(logging.INFO, logger="agents"):
        lookup(client, token, AWA)
    lines = [r.getMessage() for r in caplog.records if r.name == "agents"]
    assert any("action=view_customer" in line for line in lines)
    assert not any("770000001" in line for line in lines)


def test_by_account_an_agent_sees_the_linked_numbers_masked_and_a_supervisor_in_clear(
        agent: tuple[FlaskClient, str], supervisor: tuple[FlaskClient, str]) -> None:
    client, token = agent
    page = lookup(client, token, "2000002", kind="account").get_data(as_text=True)
    # One number is registered for the account: its file opens, the number masked for an agent.
    assert BUSINESS not in page
    assert '<span id="customer-number">+2217*****002</span>' in page
    boss, boss_token = supervisor
    page = lookup(boss, boss_token, "2000002", kind="account").get_data(as_text=True)
    assert f'<span id="customer-number">{BUSINESS}</span>' in page


def test_an_unknown_account_says_so(agent: tuple[FlaskClient, str]) -> None:
    client, token = agent
    page = lookup(client, token, "9999999", kind="account").get_data(as_text=True)
    assert "No number is linked to account 9999999." in page


def test_a_designer_may_use_the_simulator_but_not_look_customers_up(agents_app: Flask) -> None:
    client = agents_app.test_client()
    token = sign_in(client, "Fatou", "designer")
    response = client.get("/console/")
    assert response.status_code == 403 and response.mimetype == "text/html"
    assert "does not give access" in response.get_data(as_text=True)
    assert lookup(client, token, AWA).status_code == 403
    assert client.get("/simulator/").status_code == 200


def test_a_post_without_the_forms_csrf_token_changes_nothing(agent: tuple[FlaskClient, str],
                                                               agents_settings: Settings) -> None:
    client, _ = agent
    before = len(audit_rows(agents_settings))
    response = lookup(client, "forged-token", AWA)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "This form has expired" in response.get_data(as_text=True)
    assert len(audit_rows(agents_settings)) == before


def test_look_ups_are_throttled_per_agent_and_the_refusal_is_audited(
        agent: tuple[FlaskClient, str], agents_app: Flask, agents_settings: Settings) -> None:
    client, token = agent
    for _ in range(agents_settings.agent_lookup_limit):
        assert lookup(client, token, AWA).status_code == 200
    refused = lookup(client, token, AWA)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert "please wait" in refused.get_data(as_text=True)
    assert audit_rows(agents_settings)[-1].outcome == "throttled"
    # Another agent still may.
    other = agents_app.test_client()
    assert lookup(other, sign_in(other, "Binta", "agent"), AWA).status_code == 200


HOSTILE = [
    ("phone", "<script>alert(1)</script>"),
    ("phone", "+221\x00770000001"),
    ("phone", "9" * 400),
    ("account", "1000001' OR '1'='1"),
    ("account", "ééé"),
    ("ledger", "1000001"),
    ("phone", ""),
]


def test_hostile_look_ups_get_a_clear_html_answer(agent: tuple[FlaskClient, str]) -> None:
    client, token = agent
    for kind, query in HOSTILE:
        response = lookup(client, token, query, kind=kind)
        body = response.get_data(as_text=True)
        assert response.status_code == 400 and response.mimetype == "text/html", (kind, query)
        assert "<script>alert(1)</script>" not in body
        assert "Traceback" not in body and ("phone number" in body or "account number" in body), (kind, query)


def test_an_oversized_form_gets_an_html_page_not_a_500(agent: tuple[FlaskClient, str]) -> None:
    client, token = agent
    response = lookup(client, token, AWA, padding="x" * 40_000)
    assert response.status_code == 413 and response.mimetype == "text/html"


def test_agent_pages_carry_security_headers_and_a_hardened_cookie(agents_app: Flask) -> None:
    client = agents_app.test_client()
    page = client.get("/agents/signin")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    response = client.post("/agents/dev-signin", data={"name": "Awa", "role": "agent",
                                                       "csrf_token": csrf_of(client)})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_an_idle_agent_is_signed_out(agent: tuple[FlaskClient, str], agents_settings: Settings,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = agent
    assert client.get("/console/").status_code == 200
    later = datetime.now(UTC).timestamp() + agents_settings.agent_idle_seconds + 1
    monkeypatch.setattr("web_fallback.agents.auth.time.time", lambda: later)
    response = client.get("/console/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/agents/signin")
    assert "signed out after a while without activity" in client.get("/agents/signin").get_data(as_text=True)


def test_signing_in_registers_the_agent(agent: tuple[FlaskClient, str], agents_settings: Settings) -> None:
    with make_sessions(agents_settings.database_url)() as db:
        kept = db.get(AgentRow, "dev:awa")
    assert kept is not None and (kept.name, kept.roles, kept.via) == ("Awa", "agent", "dev")


def _lock_pin(settings: Settings, msisdn: str) -> None:
    with make_sessions(settings.database_url).begin() as db:
        db.add(PinCredentialRow(msisdn=msisdn, pin_hash=hash_pin("4821"), failed_attempts=0, lockouts=4,
                                locked_until=datetime.now(UTC) + timedelta(days=3650)))


def test_an_agent_unlocks_a_locked_pin_as_the_command_line_does(agent: tuple[FlaskClient, str],
                                                                 agents_settings: Settings) -> None:
    _lock_pin(agents_settings, AWA)
    client, token = agent
    page = lookup(client, token, AWA).get_data(as_text=True)
    assert "locked: <strong>until" in page and "Unlock the PIN" in page
    page = client.post("/console/pin-unlock", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "PIN unlocked; the customer is told by SMS." in page
    assert "locked: <strong>no</strong>" in page and "Unlock the PIN" not in page
    sessions = make_sessions(agents_settings.database_url)
    with sessions() as db:
        event = db.scalars(select(SecurityEventRow).where(SecurityEventRow.kind == "pin_unlocked")).one()
        told = db.scalars(select(OutboxEventRow).where(OutboxEventRow.kind == "pin_unlocked")).one()
    assert event.detail == "unlocked by agent dev:awa" and told.msisdn == AWA
    assert [r.action for r in audit_rows(agents_settings)][-2:] == ["pin_unlock", "view_customer"]
    # A second press changes nothing and says so.
    page = client.post("/console/pin-unlock", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "was not locked: nothing changed" in page


def _failed_notification(settings: Settings, msisdn: str) -> int:
    sessions = make_sessions(settings.database_url)
    SqlOutbox(sessions).add(kind="payment_receipt", msisdn=msisdn, language="fr", payload={"amount": "5500"},
                            dedupe_key=f"receipt:{msisdn}")
    with sessions.begin() as db:
        row = db.scalars(select(OutboxEventRow).where(OutboxEventRow.msisdn == msisdn)).one()
        row.status, row.attempts, row.last_error = "failed", 5, "provider refused"
        return row.id


def test_an_agent_sends_a_failed_notification_again(agent: tuple[FlaskClient, str], agents_settings: Settings) -> None:
    notification = _failed_notification(agents_settings, AWA)
    other = _failed_notification(agents_settings, BUSINESS)
    client, token = agent
    page = lookup(client, token, AWA).get_data(as_text=True)
    assert "provider refused" in page and "Send again" in page
    page = client.post("/console/resend", data={"csrf_token": token, "notification": str(notification)},
                       follow_redirects=True).get_data(as_text=True)
    assert "Notification queued again." in page
    # Another customer's notification cannot be pushed from this customer's file.
    page = client.post("/console/resend", data={"csrf_token": token, "notification": str(other)},
                       follow_redirects=True).get_data(as_text=True)
    assert "Only a failed notification of this customer" in page
    with make_sessions(agents_settings.database_url)() as db:
        assert db.get(OutboxEventRow, notification).status == "pending"   # type: ignore[union-attr]
        assert db.get(OutboxEventRow, other).status == "failed"            # type: ignore[union-attr]
    row = [r for r in audit_rows(agents_settings) if r.action == "resend_notification"][-1]
    assert row.outcome == "refused" and json.dumps(row.detail)


def test_the_file_shows_the_sessions_and_the_consent_the_customer_left(
        agent: tuple[FlaskClient, str], agents_app: Flask) -> None:
    # The customer dials, the gateway reports the session over, then the customer texts STOP.
    from tests.support.engine import UssdPhone

    customer = agents_app.test_client()
    phone = UssdPhone(customer, AWA)
    phone.dial()
    phone.answer("1")
    customer.post("/ussd/africastalking/events", data={"sessionId": phone.session_id, "serviceCode": "*123#",
                                                       "phoneNumber": AWA, "status": "Success", "hopsCount": "2"})
    customer.post("/sms/africastalking", data={"from": AWA, "to": "21212", "text": "STOP", "id": "ATXid_stop1",
                                               "date": "2026-11-26"})
    client, token = agent
    page = lookup(client, token, AWA).get_data(as_text=True)
    assert "No recorded session." not in page and "<td>Success</td>" in page
    assert "STOPPED (sent STOP)" in page and "<td>stop</td>" in page


def test_the_consent_history_says_where_the_customer_spoke_and_where_the_alerts_go(
        agent: tuple[FlaskClient, str], agents_app: Flask) -> None:
    # Awa chose WhatsApp for her messages, then switches the outage alert on from the USSD menu.
    from tests.support.engine import UssdPhone

    agents_app.extensions["parts"]["deps"].contacts.set_channel(AWA, "whatsapp", via="sms", source="keyword CANAL")
    phone = UssdPhone(agents_app.test_client(), AWA)
    phone.dial()
    phone.answer("8")
    assert phone.answer("2").startswith("CON Alertes par WhatsApp (choisissez pour changer):")
    assert "1. Panne dans ma zone: oui" in phone.answer("1")
    client, token = agent
    page = lookup(client, token, AWA).get_data(as_text=True)
    assert "<th>said on</th><th>source</th><th>alerts go by</th>" in page
    assert "<td>opt_in</td><td>outage_zone</td><td>DKR-MEDINA</td><td>ussd</td><td>menu</td><td>whatsapp</td>" in page
    assert "<td>channel</td><td>whatsapp</td><td>-</td><td>sms</td><td>keyword CANAL</td><td>-</td>" in page


def test_a_supervisor_reads_what_agents_did_and_an_agent_may_not(
        agent: tuple[FlaskClient, str], supervisor: tuple[FlaskClient, str], agents_settings: Settings) -> None:
    client, token = agent
    lookup(client, token, AWA)
    assert client.get("/console/audit").status_code == 403
    boss, _ = supervisor
    page = boss.get("/console/audit?agent=dev:awa").get_data(as_text=True)
    assert "<td>dev:awa</td><td>agent</td><td>view_customer</td><td>ok</td>" in page
    assert pseudonym(agents_settings.secret_key, AWA)[:16] in page and AWA not in page


def test_unknown_agent_pages_and_wrong_methods_get_html_pages(agent: tuple[FlaskClient, str]) -> None:
    client, _ = agent
    missing = client.get("/console/../../etc/passwd")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    wrong = client.get("/console/pin-unlock")
    assert wrong.status_code == 405 and wrong.mimetype == "text/html" and "POST" in wrong.headers["Allow"]
    nothing_open = client.post("/console/pin-unlock", data={"csrf_token": csrf_of(client, "/console/")})
    assert nothing_open.status_code == 404 and "look one up first" in nothing_open.get_data(as_text=True)
