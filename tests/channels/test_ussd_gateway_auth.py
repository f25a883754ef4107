"""Only the gateway talks to the engine: its token (header or ``?token=``) and, when configured,
its source networks; everyone else gets 403 with an END line, nothing runs, and the refusal is a
security event."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from sqlalchemy import select

from app import factory
from app.factory import create_app
from app.storage.models import SessionAuditRow
from engine import SecurityEvent

TOKEN = "gw-3f9a1c7e5b2d"
FORM = {"sessionId": "ATUid_gw1", "serviceCode": "*123#", "phoneNumber": "+221770000001", "text": "",
        "networkCode": "99999"}
EVENT = {"sessionId": "ATUid_gw1", "serviceCode": "*123#", "networkCode": "99999", "phoneNumber": "+221770000001",
         "status": "Success", "durationInMillis": "9000", "hopsCount": "1", "errorMessage": ""}
DENIED = "END Accès refusé. / Access denied."


class RecordingAudit:
    """A ``SecurityAudit`` that keeps what it is given, for the test to read."""

    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []

    def record(self, event: SecurityEvent) -> None:
        self.events.append(event)


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> RecordingAudit:
    recording = RecordingAudit()
    monkeypatch.setattr(factory, "build_security_audit", lambda settings, sessions: recording)
    return recording


def _hops(app) -> float:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("engine_hops_total{"))


@pytest.fixture
def guarded(settings, audit):
    return create_app(replace(settings, ussd_gateway_token=TOKEN))


def test_a_callback_without_the_token_is_refused_and_nothing_runs(guarded, audit, caplog):
    client = guarded.test_client()
    with caplog.at_level(logging.INFO):
        missing = client.post("/ussd/africastalking", data=FORM)
        wrong = client.post("/ussd/africastalking", data=FORM, headers={"X-Gateway-Token": TOKEN[:-1] + "x"})
        wrong_param = client.post("/ussd/africastalking?token=nope", data=FORM)
    for response in (missing, wrong, wrong_param):
        assert response.status_code == 403
        assert response.mimetype == "text/plain"
        assert response.get_data(as_text=True) == DENIED
    assert _hops(guarded) == 0  # the engine never saw them
    assert [(e.kind, e.channel, e.subject, e.detail) for e in audit.events] == [
        ("gateway_refused", "ussd", "127.0.0.1", "callback: gateway token missing"),
        ("gateway_refused", "ussd", "127.0.0.1", "callback: gateway token wrong"),
        ("gateway_refused", "ussd", "127.0.0.1", "callback: gateway token wrong"),
    ]
    assert "refused USSD callback request: gateway token missing" in caplog.text
    assert TOKEN not in caplog.text and "770000001" not in caplog.text


def test_the_gateway_with_its_token_in_the_header_or_the_url_is_served(guarded, audit):
    client = guarded.test_client()
    by_header = client.post("/ussd/africastalking", data=FORM, headers={"X-Gateway-Token": TOKEN})
    assert by_header.status_code == 200
    assert by_header.get_data(as_text=True).startswith("CON ") and "1000001" in by_header.get_data(as_text=True)
    by_url = client.post(f"/ussd/africastalking?token={TOKEN}", data={**FORM, "text": "1"})
    assert by_url.status_code == 200
    assert by_url.get_data(as_text=True).startswith("CON Compte 1000001")
    assert audit.events == []


def test_end_of_session_events_need_the_token_too(guarded, audit):
    client = guarded.test_client()
    client.post("/ussd/africastalking", data=FORM, headers={"X-Gateway-Token": TOKEN})
    forged = client.post("/ussd/africastalking/events", data={**EVENT, "status": "Failed",
                                                               "errorMessage": "rewritten\nby anyone"})
    assert forged.status_code == 403 and forged.get_data(as_text=True) == DENIED
    assert [(e.kind, e.detail) for e in audit.events] == [("gateway_refused", "events: gateway token missing")]
    genuine = client.post("/ussd/africastalking/events", data=EVENT, headers={"X-Gateway-Token": TOKEN})
    assert genuine.status_code == 200
    with guarded.extensions["parts"]["db"]() as db:
        row = db.scalars(select(SessionAuditRow)).one()
    assert (row.gateway_status, row.gateway_error) == ("Success", None)


def test_source_networks_are_checked_and_forwarded_addresses_believed_only_from_trusted_proxies(settings, audit):
    guarded = create_app(replace(settings, ussd_gateway_token=TOKEN, ussd_allowed_networks=("10.20.0.0/16",)))
    client = guarded.test_client()
    ok = {"X-Gateway-Token": TOKEN}
    inside = client.post("/ussd/africastalking", data=FORM, headers=ok, environ_base={"REMOTE_ADDR": "10.20.3.4"})
    assert inside.status_code == 200 and inside.get_data(as_text=True).startswith("CON ")
    # The right token from elsewhere is still refused; a forwarded header from an untrusted peer is ignored.
    outside = client.post("/ussd/africastalking", data=FORM, headers={**ok, "X-Forwarded-For": "10.20.3.4"},
                          environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert outside.status_code == 403 and outside.get_data(as_text=True) == DENIED
    assert [(e.subject, e.detail) for e in audit.events] == [
        ("198.51.100.9", "callback: source network not allowed")]

    proxied = create_app(replace(settings, ussd_gateway_token=TOKEN, ussd_allowed_networks=("10.20.0.0/16",),
                                 trusted_proxies=("127.0.0.1/32",)))
    client = proxied.test_client()
    via_proxy = client.post("/ussd/africastalking", data=FORM, headers={**ok, "X-Forwarded-For": "10.20.3.4"})
    assert via_proxy.status_code == 200
    spoofed = client.post("/ussd/africastalking", data=FORM,
                          headers={**ok, "X-Forwarded-For": "10.20.3.4, 198.51.100.9"})
    assert spoofed.status_code == 403
    garbage = client.post("/ussd/africastalking", data=FORM, headers={**ok, "X-Forwarded-For": "<script>x</script>"})
    assert garbage.status_code == 403
    assert [e.subject for e in audit.events[-2:]] == ["198.51.100.9", "unknown"]


def test_an_open_callback_is_announced_at_start_up(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="app"):
        create_app(settings)
    assert "USSD_GATEWAY_TOKEN is not set: the USSD callback and its events endpoint accept any caller" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app"):
        create_app(replace(settings, ussd_gateway_token=TOKEN))
    assert "USSD_GATEWAY_TOKEN" not in caplog.text


def test_settings_never_print_the_token(settings):
    assert TOKEN not in repr(replace(settings, ussd_gateway_token=TOKEN))
