"""The worker forwards complaints kept while the incident system was down: once, under the
client reference the report was kept with, so a later "Confirm" never opens a second ticket."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import flask
import redis
import requests

from app.factory import create_app
from app.settings import Settings
from app.storage import SqlPendingTickets, make_sessions
from app.worker import run_forever, run_once
from dialogs.stores import PendingTicket

from ..support.engine import UssdPhone
from ..support.incident_switch import IncidentSwitch
from ..support.polling import until
from ..support.services import clean_redis, serve_wsgi


def _tickets(backoffice_url: str, account: str) -> list[dict[str, Any]]:
    response = requests.get(f"{backoffice_url}/api/v1/tickets", params={"account_number": account}, timeout=5)
    response.raise_for_status()
    return list(response.json()["tickets"])


def _until(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    """Poll ``condition`` (the loop runs in a thread)."""
    return bool(until(condition, seconds))


def test_worker_pass_forwards_kept_tickets_once(settings, backoffice_url):
    pending = SqlPendingTickets(make_sessions(settings.database_url))
    pending.add(PendingTicket("ussd:s1:complaint", "+221770000001", "1000001", "complaint", "billing",
                              "Billing dispute", "pending"))
    assert run_once(settings)["tickets_sent"] == 1
    assert run_once(settings)["tickets_sent"] == 0
    sent = pending.for_user("+221770000001")[0]
    assert sent.status == "sent" and sent.ticket_reference and sent.ticket_reference.startswith("REC-")
    ticket = requests.get(f"{backoffice_url}/api/v1/tickets/{sent.ticket_reference}", timeout=5).json()
    assert ticket["category"] == "billing" and ticket["account_number"] == "1000001"


def test_a_kept_ticket_the_incident_system_refuses_is_not_sent_again(settings):
    pending = SqlPendingTickets(make_sessions(settings.database_url))
    pending.add(PendingTicket("ussd:s2:bad", "+221770000001", "9999999", "complaint", "billing",
                              "Billing dispute", "pending"))   # an account the incident system rejects
    assert run_once(settings)["tickets_sent"] == 0
    kept = pending.for_user("+221770000001")[0]
    assert kept.status == "refused" and pending.due() == []
    assert run_once(settings) == {"tickets_sent": 0}


def test_forwarding_a_kept_complaint_is_idempotent(settings: Settings, backoffice_app: flask.Flask,
                                                   backoffice_url: str, redis_url: str) -> None:
    gate = IncidentSwitch(backoffice_app)
    with serve_wsgi(gate) as url:
        switched = replace(settings, backoffice_url=url)
        app = create_app(switched)
        pending = SqlPendingTickets(make_sessions(settings.database_url))
        gate.down = True
        p = UssdPhone(app.test_client(), "+221770000001")
        p.dial()
        p.answer("4")
        p.answer("2")
        p.answer("2")                  # meter problem
        p.answer("1")                  # no description
        assert re.match(r"CON Réclamation enregistrée sous la référence REC-[2-9A-Z]{4}\.", p.answer("1"))
        [kept] = pending.for_user("+221770000001")

        gate.down = False
        assert run_once(switched) == {"tickets_sent": 1}
        [ticket] = _tickets(backoffice_url, "1000001")
        assert ticket["client_reference"] == kept.client_reference       # forwarded as it was kept

        # The session record is lost and the gateway replays the Confirm hop: the same session
        # confirms again, and is shown the ticket its report became; nothing new is opened.
        clean_redis(redis.Redis.from_url(redis_url))   # this run's own database only
        assert p.post("*".join(p.inputs)) == (
            f"CON Réclamation enregistrée. Référence: {ticket['reference']}\nPour la suivre: menu 5, ou envoyez "
            f"SUIVI {ticket['reference']} par SMS.\n0. Retour 00. Accueil")
        assert run_once(switched) == {"tickets_sent": 0}
        assert [t["reference"] for t in _tickets(backoffice_url, "1000001")] == [ticket["reference"]]


def test_the_worker_loop_forwards_each_kept_ticket_once_and_stops_when_asked(settings: Settings,
                                                                            backoffice_url: str) -> None:
    pending = SqlPendingTickets(make_sessions(settings.database_url))
    pending.add(PendingTicket("ussd:loop:1", "+221770000001", "1000001", "complaint", "quality",
                              "Lights flicker", "pending"))
    stop = threading.Event()
    worker = threading.Thread(target=run_forever, args=(settings,),
                              kwargs={"interval_seconds": 0.05, "stop": stop}, daemon=True)
    worker.start()
    try:
        assert _until(lambda: not pending.due()), "the loop never forwarded the kept complaint"
        # A report kept later is picked up by a later pass of the same loop.
        pending.add(PendingTicket("ussd:loop:2", "+221770000001", "1000001", "complaint", "other",
                                  "Street lamp", "pending"))
        assert _until(lambda: not pending.due()), "the loop stopped after its first pass"
        time.sleep(0.3)                                        # more passes: nothing is sent twice
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    tickets = _tickets(backoffice_url, "1000001")
    assert sorted((t["category"], t["client_reference"]) for t in tickets) == [
        ("other", "ussd:loop:2"), ("quality", "ussd:loop:1")]
    assert {t.ticket_reference for t in pending.for_user("+221770000001")} == {t["reference"] for t in tickets}
