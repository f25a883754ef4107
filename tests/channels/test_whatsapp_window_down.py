"""A customer's reply on WhatsApp goes out when the product cannot note their 24-hour window (the database of
``whatsapp_windows`` stopped, or unreachable: a server that takes the connection and never answers, as behind a
dead link). The note is taken after the answer has gone, so neither Twilio's reply (the webhook's answer, which
Twilio waits about 15 s for) nor Meta's acknowledgement waits for the database; the window not noted only means
a template where free text could have gone. Over real HTTP, as each provider posts, against the product served on
loopback; only the windows' repository points at the failing database."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

import pytest
import requests

from app import factory
from app.factory import create_app
from app.settings import Settings
from app.storage import make_sessions
from app.storage.whatsapp_windows import SqlWhatsAppWindows
from tests.support.fake_graph import FakeGraph, readable
from tests.support.ports import closed_port
from tests.support.services import serve_wsgi

from .whatsapp_phones import (
    META_SECRET,
    PHONE_NUMBER_ID,
    TWILIO_PUBLIC_URL,
    TWILIO_TOKEN,
    meta_signature,
    twilio_signature,
    twiml_messages,
)

AWA = "+221770000001"
MENU = "ElecNet - 1000001\n1. Solde et factures"
MENU_LIST = "ElecNet - 1000001\n(Choisir)\n- 1 Solde et factures"     # as a list on Meta
ANSWERED_WITHIN = 5.0      # seconds: far below Twilio's 15


@contextmanager
def stopped_database() -> Iterator[str]:
    """The address of a PostgreSQL server that is not running: nothing listens there (connection refused)."""
    yield f"postgresql+psycopg://elecnet@127.0.0.1:{closed_port()}/elecnet"


@contextmanager
def unanswering_database() -> Iterator[str]:
    """The address of a PostgreSQL server that takes connections and never says a word (a hung server, a host behind
    a dead link): connecting waits for it without end. Closed afterwards, which resets the waiting connections."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield f"postgresql+psycopg://elecnet@127.0.0.1:{listener.getsockname()[1]}/elecnet"


@pytest.fixture(params=["stopped", "unanswering"])
def windows_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The product's WhatsApp windows kept in a database that is down; everything else in the test database."""
    database = stopped_database if request.param == "stopped" else unanswering_database
    with database() as url:
        def windows_there(_sessions: object, clock: Callable[[], datetime]) -> SqlWhatsAppWindows:
            return SqlWhatsAppWindows(make_sessions(url), clock)
        monkeypatch.setattr(factory, "SqlWhatsAppWindows", windows_there)
        yield request.param


@pytest.fixture
def served(wa_settings: Settings, windows_database: str) -> Iterator[str]:
    with serve_wsgi(create_app(replace(wa_settings, quiet_hours=""))) as url:
        yield url


def test_twilio_gets_the_customer_s_reply_when_the_window_cannot_be_noted(served: str, windows_database: str,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    form = {"MessageSid": "SM" + "a" * 32, "AccountSid": "AC" + "1" * 32, "From": f"whatsapp:{AWA}",
            "To": "whatsapp:+14155238886", "Body": "MENU", "NumMedia": "0", "NumSegments": "1", "ProfileName": "Awa",
            "WaId": AWA.lstrip("+"), "MessageType": "text", "ApiVersion": "2010-04-01"}
    signature = twilio_signature(TWILIO_TOKEN, f"{TWILIO_PUBLIC_URL}/whatsapp/twilio", form)
    started = time.monotonic()
    response = requests.post(f"{served}/whatsapp/twilio", data=form, headers={"X-Twilio-Signature": signature},
                             timeout=ANSWERED_WITHIN)
    assert time.monotonic() - started < ANSWERED_WITHIN
    assert response.status_code == 200
    [menu] = twiml_messages(response.text)
    assert menu.startswith(MENU)
    if windows_database == "stopped":     # noted as not noted, the number masked (the other is still waiting)
        wait_for(lambda: "whatsapp window of" in caplog.text)
        assert "whatsapp window of +2217*****001 not noted: OperationalError" in caplog.text
        assert AWA not in caplog.text


def test_meta_gets_the_reply_sent_and_its_event_acknowledged_when_the_window_cannot_be_noted(
        served: str, graph: FakeGraph) -> None:
    message = {"from": AWA.lstrip("+"), "id": "wamid.HBgL00000000000000000001==", "timestamp": str(int(time.time())),
               "type": "text", "text": {"body": "MENU"}}
    event = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                  "contacts": [{"profile": {"name": "Awa"}, "wa_id": AWA.lstrip("+")}], "messages": [message]}}]}]}
    body = json.dumps(event).encode()
    started = time.monotonic()
    response = requests.post(f"{served}/whatsapp/meta", data=body, timeout=ANSWERED_WITHIN, headers={
        "X-Hub-Signature-256": meta_signature(META_SECRET, body), "Content-Type": "application/json"})
    assert time.monotonic() - started < ANSWERED_WITHIN
    assert response.status_code == 200           # acknowledged: Meta does not deliver it again
    [reply] = [readable(m) for m in graph.messages_to(AWA.lstrip("+"))]
    assert reply.startswith(MENU_LIST)


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _warnings_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="channels.whatsapp")
