"""Transcripts over the USSD callback: outage reports, complaints, and reports kept when the
incident system is down (then forwarded by ``resend_pending_tickets``).

Real Flask app, real Redis sessions, the reference back office served on loopback. For "down",
the back office is served behind a switch that answers 503 on the incident paths only, so the
customer can still be identified (billing) while tickets cannot be opened.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import flask
import pytest
import redis
import requests

from app.factory import create_app
from app.settings import Settings
from dialogs.incidents import resend_pending_tickets

from ..support.engine import UssdPhone
from ..support.services import clean_redis, serve_wsgi

INCIDENT_FR = ("CON Panne ou réclamation:\n1. Signaler une panne\n2. Faire une réclamation\n"
               "0. Retour 00. Accueil")
INCIDENT_EN = "CON Outage or complaint:\n1. Report an outage\n2. Make a complaint\n0. Back 00. Home"
COMPLAINT_FR = ("CON Votre réclamation concerne:\n1. Contestation de facture\n2. Problème de compteur\n"
                "3. Qualité du courant\n4. Autre\n0. Retour 00. Accueil")
REFERENCE = re.compile(r"Référence: ((INC|REC)-[2-9A-Z]{4})|Reference: ((INC|REC)-[2-9A-Z]{4})")


def _reference(screen: str) -> str:
    found = REFERENCE.search(screen)
    assert found, screen
    return found.group(1) or found.group(3)


def _tickets(backoffice_url: str, account: str) -> list[dict[str, Any]]:
    response = requests.get(f"{backoffice_url}/api/v1/tickets", params={"account_number": account}, timeout=5)
    response.raise_for_status()
    return list(response.json()["tickets"])


def _hhmm(iso: str) -> str:
    """``{x:datetime}`` as the engine shows it (Africa/Dakar is UTC all year)."""
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return moment.strftime("%d/%m %H:%M")


# ---------------------------------------------------------------- outage
def test_known_outage_shows_the_eta_and_subscribes_to_the_power_back_alert(phone, app, backoffice_url):
    outages = requests.get(f"{backoffice_url}/api/v1/outages", params={"zone": "THIES-NORD"}, timeout=5).json()
    outage = outages["outages"][0]
    p = phone("+221770000002")
    p.dial()
    assert p.answer("2").startswith("CON Senelec - 2000002")
    assert p.answer("4") == INCIDENT_EN
    assert p.answer("1") == (
        "CON An outage is already known in your area (THIES-NORD). Power expected back: "
        f"{_hhmm(outage['estimated_restoration'])}.\n1. SMS me when power is back\n0. Back 00. Home")
    assert p.answer("1") == ("CON You will get an SMS when power is back in your area (THIES-NORD).\n"
                             "0. Back 00. Home")
    subscriptions = app.extensions["parts"]["deps"].subscriptions.for_user("+221770000002")
    assert [(s.topic, s.scope, s.channel) for s in subscriptions] == [("power_back", outage["outage_id"], "sms")]
    assert _tickets(backoffice_url, "2000002") == []          # no duplicate ticket for a known outage


def test_known_outage_without_eta_still_offers_the_alert(phone, app, backoffice_url):
    created = requests.post(f"{backoffice_url}/api/v1/outages", json={"zone": "DKR-MEDINA", "cause": "cable"},
                            timeout=5)
    assert created.status_code == 201, created.text
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    assert p.answer("1") == ("CON Une panne est déjà connue dans votre zone (DKR-MEDINA). Nos équipes "
                             "interviennent.\n1. Alerte SMS au retour du courant\n0. Retour 00. Accueil")
    assert p.answer("1") == ("CON Vous recevrez un SMS au retour du courant dans votre zone (DKR-MEDINA).\n"
                             "0. Retour 00. Accueil")
    subscriptions = app.extensions["parts"]["deps"].subscriptions.for_user("+221770000001")
    assert [(s.topic, s.scope) for s in subscriptions] == [("power_back", created.json()["outage_id"])]


def test_no_known_outage_opens_a_ticket_in_french(phone, backoffice_url):
    p = phone("+221770000001")
    p.dial()
    assert p.answer("4") == INCIDENT_FR
    screen = p.answer("1")
    reference = _reference(screen)
    assert reference.startswith("INC-")
    assert screen == (f"CON Panne signalée. Référence: {reference}\nNotez-la pour suivre votre demande "
                      "(menu 5).\n0. Retour 00. Accueil")
    ticket = requests.get(f"{backoffice_url}/api/v1/tickets/{reference}", timeout=5).json()
    assert (ticket["kind"], ticket["category"], ticket["account_number"], ticket["status"]) == (
        "outage", "outage", "1000001", "open")


def test_dialling_the_shortcut_reaches_the_menu(phone):
    p = phone("+221770000001")
    assert p.dial("4") == INCIDENT_FR


# ---------------------------------------------------------------- complaints
@pytest.mark.parametrize(("choice", "category", "label", "description"), [
    ("1", "billing", "Contestation de facture", "Billing dispute"),
    ("2", "meter", "Problème de compteur", "Meter problem"),
    ("3", "quality", "Qualité du courant", "Supply quality"),
    ("4", "other", "Autre", "Other"),
])
def test_complaint_per_category_in_french(phone, backoffice_url, choice, category, label, description):
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    assert p.answer("2") == COMPLAINT_FR
    assert p.answer(choice) == (f"CON Réclamation: {label}\nCompte 1000001\n1. Confirmer\n"
                                "0. Retour 00. Accueil")
    screen = p.answer("1")
    reference = _reference(screen)
    assert reference.startswith("REC-")
    assert screen == (f"CON Réclamation enregistrée. Référence: {reference}\nNotez-la pour suivre votre "
                      "demande (menu 5).\n0. Retour 00. Accueil")
    ticket = requests.get(f"{backoffice_url}/api/v1/tickets/{reference}", timeout=5).json()
    assert (ticket["kind"], ticket["category"], ticket["description"], ticket["account_number"], ticket["msisdn"]) == (
        "complaint", category, description, "1000001", "+221770000001")


def test_complaint_in_english(phone, backoffice_url):
    p = phone("+221770000002")
    p.dial()
    p.answer("3")
    p.answer("4")
    assert p.answer("2") == ("CON Your complaint is about:\n1. Billing dispute\n2. Meter problem\n"
                             "3. Supply quality\n4. Other\n0. Back 00. Home")
    assert p.answer("2") == "CON Complaint: Meter problem\nAccount 2000003\n1. Confirm\n0. Back 00. Home"
    screen = p.answer("1")
    reference = _reference(screen)
    assert screen == (f"CON Complaint filed. Reference: {reference}\nKeep it to track your request (menu 5).\n"
                      "0. Back 00. Home")
    assert [t["reference"] for t in _tickets(backoffice_url, "2000003")] == [reference]


def test_a_replayed_or_repeated_hop_does_not_open_two_tickets(phone, backoffice_url, redis_url):
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    p.answer("2")
    p.answer("1")
    first = p.answer("1")
    reference = _reference(first)
    # The gateway sends the same hop again: the engine answers from its record.
    assert p.post("*".join(p.inputs)) == first
    # The session record is lost (Redis flushed) and the gateway replays the whole text: the
    # step runs again with the same client reference, and the back office gives the same ticket.
    clean_redis(redis.Redis.from_url(redis_url))   # this run's own database only
    assert p.post("*".join(p.inputs)) == first
    # Back, then Confirm again in the same session: still the same ticket.
    assert p.answer("0").startswith("CON Réclamation: Contestation de facture")
    assert p.answer("1") == first
    assert [t["reference"] for t in _tickets(backoffice_url, "1000001")] == [reference]
    # Another category in the same session is another complaint.
    p.answer("00")
    p.answer("4")
    p.answer("2")
    p.answer("3")
    other = _reference(p.answer("1"))
    assert other != reference
    assert {t["reference"] for t in _tickets(backoffice_url, "1000001")} == {reference, other}


# ---------------------------------------------------------------- incident system down
class IncidentSwitch:
    """The back office, with its incident API answering 503 while ``down`` is set."""

    PATHS = ("/api/v1/tickets", "/api/v1/outages")

    def __init__(self, wsgi: flask.Flask) -> None:
        self.wsgi = wsgi
        self.down = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.down and str(environ.get("PATH_INFO", "")).startswith(self.PATHS):
            start_response("503 SERVICE UNAVAILABLE", [("Content-Type", "application/json")])
            return [b'{"error": "unavailable", "message": "incident system down"}']
        return self.wsgi(environ, start_response)


@pytest.fixture
def switch(backoffice_app: flask.Flask) -> Iterator[tuple[IncidentSwitch, str]]:
    gate = IncidentSwitch(backoffice_app)
    with serve_wsgi(gate) as url:
        yield gate, url


@pytest.fixture
def switched_app(switch, engine_db: str, redis_url: str) -> flask.Flask:
    _, url = switch
    return create_app(Settings(resume_window_seconds=0, database_url=engine_db, redis_url=redis_url, backoffice_url=url,
                               backend_connect_timeout=0.5, backend_read_timeout=2.0,
                               payment_callback_secret="test-callback-secret"))


def test_complaint_is_kept_when_the_incident_system_is_down_then_forwarded(switch, switched_app, backoffice_url):
    gate, _ = switch
    deps = switched_app.extensions["parts"]["deps"]
    gate.down = True
    p = UssdPhone(switched_app.test_client(), "+221770000001")
    p.dial()
    p.answer("4")
    p.answer("2")
    assert p.answer("1").startswith("CON Réclamation: Contestation de facture")
    screen = p.answer("1")
    local = re.search(r"référence (REC-[2-9A-Z]{4})\.", screen)
    assert local, screen
    assert screen == (f"CON Réclamation enregistrée sous la référence {local.group(1)}. Elle sera transmise à "
                      "nos équipes dès que possible.\n0. Retour 00. Accueil")
    [kept] = deps.pending_tickets.for_user("+221770000001")
    assert (kept.status, kept.kind, kept.category, kept.account_number, kept.description) == (
        "pending", "complaint", "billing", "1000001", "Billing dispute")
    assert _tickets(backoffice_url, "1000001") == []

    # Still down: nothing sent, nothing lost.
    assert resend_pending_tickets(deps.incidents, deps.pending_tickets) == 0
    assert [t.status for t in deps.pending_tickets.for_user("+221770000001")] == ["pending"]

    gate.down = False
    assert resend_pending_tickets(deps.incidents, deps.pending_tickets) == 1
    [sent] = deps.pending_tickets.for_user("+221770000001")
    [ticket] = _tickets(backoffice_url, "1000001")
    assert (sent.status, sent.ticket_reference) == ("sent", ticket["reference"])
    assert (ticket["kind"], ticket["category"]) == ("complaint", "billing")
    assert resend_pending_tickets(deps.incidents, deps.pending_tickets) == 0     # nothing due any more

    # Tracking now shows the real reference, and the local one leads to it.
    t = UssdPhone(switched_app.test_client(), "+221770000001")
    t.dial()
    t.answer("5")
    assert t.answer("1") == (f"CON Vos demandes (choisissez):\n1. {ticket['reference']} Réclamation ouverte\n"
                             "0. Retour 00. Accueil")
    t.answer("0")
    t.answer("2")
    assert t.answer(local.group(1).lower()).startswith(
        f"CON {ticket['reference']} Contestation de facture\nStatut: ouverte\nHistorique:\n")


def test_outage_is_kept_when_the_incident_system_is_down_in_english(switch, switched_app, backoffice_url):
    gate, _ = switch
    deps = switched_app.extensions["parts"]["deps"]
    gate.down = True
    p = UssdPhone(switched_app.test_client(), "+221770000002")
    p.dial()
    p.answer("2")
    p.answer("4")
    screen = p.answer("1")       # the outage check is down too: the report is kept rather than lost
    local = re.search(r"reference (INC-[2-9A-Z]{4})\.", screen)
    assert local, screen
    assert screen == (f"CON Outage recorded under reference {local.group(1)}. It will be forwarded to our "
                      "teams as soon as possible.\n0. Back 00. Home")
    [kept] = deps.pending_tickets.for_user("+221770000002")
    assert (kept.kind, kept.category, kept.account_number, kept.status) == ("outage", "outage", "2000002",
                                                                            "pending")
    # A replay of the same hop keeps it once.
    p.answer("0")
    assert p.answer("1") == screen
    assert len(deps.pending_tickets.for_user("+221770000002")) == 1

    gate.down = False
    assert resend_pending_tickets(deps.incidents, deps.pending_tickets) == 1
    [ticket] = _tickets(backoffice_url, "2000002")
    assert (ticket["kind"], ticket["category"]) == ("outage", "outage")
