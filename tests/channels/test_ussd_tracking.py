"""Transcripts over the USSD callback: tracking requests, from the list or by reference.

Real Flask app, real Redis sessions, the reference back office served on loopback; agents'
status changes go through the back office's own API, as its agents' tools would.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import requests

from dialogs.incidents import local_reference

from ..support.engine import UssdPhone
from .test_ussd_incidents import IncidentSwitch, switch, switched_app  # noqa: F401  (fixtures)

TRACK_FR = "CON Suivi de demande:\n1. Mes demandes\n2. Saisir une référence\n0. Retour 00. Accueil"
TRACK_EN = "CON Track a request:\n1. My requests\n2. Enter a reference\n0. Back 00. Home"


def _open(backoffice_url: str, account: str, kind: str, category: str, client_reference: str) -> dict[str, Any]:
    response = requests.post(f"{backoffice_url}/api/v1/tickets", json={
        "kind": kind, "category": category, "account_number": account, "description": "test",
        "client_reference": client_reference}, timeout=5)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _agent_sets(backoffice_url: str, reference: str, status: str) -> dict[str, Any]:
    response = requests.post(f"{backoffice_url}/api/v1/tickets/{reference}/status",
                             json={"status": status, "note": "by agent"}, timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _at(iso: str) -> str:
    """``{x:datetime}`` as the engine shows it (Africa/Dakar is UTC all year)."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%d/%m %H:%M")


def test_list_then_detail_in_french(phone, backoffice_url):
    outage = _open(backoffice_url, "1000001", "outage", "outage", "t-1")
    complaint = _open(backoffice_url, "1000001", "complaint", "meter", "t-2")
    p = phone("+221770000001")
    p.dial()
    assert p.answer("5") == TRACK_FR
    listing = p.answer("1")
    assert listing == (f"CON Vos demandes (choisissez):\n1. {complaint['reference']} Réclamation ouverte\n"
                       f"2. {outage['reference']} Panne ouverte\n0. Retour 00. Accueil")
    assert p.answer("2") == (f"CON {outage['reference']} Panne\nStatut: ouverte\nHistorique:\n"
                             f"{_at(outage['created_at'])} ouverte\n0. Retour 00. Accueil")
    assert p.answer("0") == listing
    assert p.answer("1").startswith(f"CON {complaint['reference']} Problème de compteur\nStatut: ouverte\n")


def test_no_requests_yet(phone):
    p = phone("+221770000003")
    p.dial()
    p.answer("5")
    assert p.answer("1") == "CON Aucune demande sur ce compte.\n0. Retour 00. Accueil"


def test_a_long_list_is_paged(phone, backoffice_url):
    for i in range(12):
        # Resolved one by one: the same subject while one is open would be that same ticket.
        _agent_sets(backoffice_url, _open(backoffice_url, "1000001", "complaint", "other", f"page-{i}")["reference"],
                    "resolved")
    p = phone("+221770000001")
    p.dial()
    p.answer("5")
    first = p.answer("1")
    assert first.endswith("98. Suite") and "1. REC-" in first
    second = p.answer("98")
    assert "99. Préc." in second
    assert p.answer("99") == first


def test_agent_status_changes_show_in_the_history_in_english(phone, backoffice_url):
    ticket = _open(backoffice_url, "2000002", "complaint", "quality", "t-3")
    reference = ticket["reference"]
    p = phone("+221770000002")
    p.dial()
    p.answer("2")
    assert p.answer("5") == TRACK_EN
    assert p.answer("2") == "CON Enter the reference (e.g. REC-7K3Q):\n0. Back 00. Home"
    assert p.answer(reference) == (f"CON {reference} Supply quality\nStatus: open\nHistory:\n"
                                   f"{_at(ticket['created_at'])} open\n0. Back 00. Home")
    started = _agent_sets(backoffice_url, reference, "in_progress")
    resolved = _agent_sets(backoffice_url, reference, "resolved")
    t = phone("+221770000002")
    t.dial()
    t.answer("2")
    t.answer("5")
    t.answer("2")
    assert t.answer(reference.lower()) == (
        f"CON {reference} Supply quality\nStatus: resolved\nHistory:\n"
        f"{_at(resolved['history'][-1]['at'])} resolved\n{_at(started['history'][-1]['at'])} in progress\n"
        f"{_at(ticket['created_at'])} open\n0. Back 00. Home")
    _agent_sets(backoffice_url, reference, "closed")
    t.answer("0")
    latest = t.answer(reference.replace("-", "").lower())      # no dash, lower case: normalised
    assert latest.startswith(f"CON {reference} Supply quality\nStatus: closed\nHistory:\n")
    assert latest.count("\n") == 6                              # the last three events only
    t.answer("00")
    t.answer("5")
    assert t.answer("1") == (f"CON Your requests (choose one):\n1. {reference} Complaint closed\n"
                             "0. Back 00. Home")


def test_unknown_and_invalid_references(phone, backoffice_url):
    others = _open(backoffice_url, "2000001", "complaint", "billing", "t-4")
    p = phone("+221770000001")
    p.dial()
    p.answer("5")
    p.answer("2")
    assert p.answer("hello") == ("CON Référence invalide: INC- ou REC- suivi de 4 caractères, ou ARR- suivi de 10.\n"
                                 "Entrez la référence (ex: REC-7K3Q):\n0. Retour 00. Accueil")
    assert p.answer("rec-2222") == ("CON Aucune demande trouvée avec la référence REC-2222.\n"
                                    "1. Saisir une autre référence\n0. Retour 00. Accueil")
    p.answer("1")
    # Another customer's ticket is not shown: it reads as unknown.
    assert p.answer(others["reference"]) == (
        f"CON Aucune demande trouvée avec la référence {others['reference']}.\n"
        "1. Saisir une autre référence\n0. Retour 00. Accueil")


def test_a_kept_request_shows_as_recorded_pending_until_forwarded(switch, switched_app, backoffice_url):  # noqa: F811
    gate, _ = switch
    gate.down = True
    p = UssdPhone(switched_app.test_client(), "+221770000001")
    p.dial()
    p.answer("4")
    p.answer("2")
    p.answer("3")
    p.answer("1")          # no description
    local = re.search(r"référence (REC-[2-9A-Z]{4})\.", p.answer("1"))
    assert local, p.post("*".join(p.inputs))
    kept = local.group(1)
    [pending] = switched_app.extensions["parts"]["deps"].pending_tickets.for_user("+221770000001")
    assert local_reference(pending.kind, pending.client_reference) == kept

    # While the incident system is down, tracking says so politely.
    d = UssdPhone(switched_app.test_client(), "+221770000001")
    d.dial()
    d.answer("5")
    assert d.answer("1") == ("CON Le suivi est momentanément indisponible. Merci de réessayer plus tard.\n"
                             "0. Retour 00. Accueil")

    gate.down = False
    existing = _open(backoffice_url, "1000001", "outage", "outage", "t-5")
    t = UssdPhone(switched_app.test_client(), "+221770000001")
    t.dial()
    t.answer("5")
    assert t.answer("1") == (f"CON Vos demandes (choisissez):\n1. {kept} Réclamation enregistrée, en attente\n"
                             f"2. {existing['reference']} Panne ouverte\n0. Retour 00. Accueil")
    pending_detail = (f"CON {kept} Qualité du courant\nStatut: enregistrée, en attente. Elle sera transmise "
                      "à nos équipes dès que possible.\n0. Retour 00. Accueil")
    assert t.answer("1") == pending_detail
    t.answer("0")
    t.answer("0")
    t.answer("2")
    assert t.answer(kept.lower()) == pending_detail


# ---------------------------------------------------------------- payment arrangements are requests too
def _arrangement(backoffice_url: str, account: str, kind: str, months: int) -> dict[str, Any]:
    import uuid

    response = requests.post(f"{backoffice_url}/api/v1/accounts/{account}/arrangements",
                             json={"kind": kind, "months": months},
                             headers={"Idempotency-Key": f"test-{uuid.uuid4().hex}"}, timeout=5)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _date(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%d/%m/%Y")


def test_an_arrangement_is_listed_and_shown_in_french(phone, backoffice_url):
    made = _arrangement(backoffice_url, "1000001", "instalments", 2)
    first = made["schedule"][0]
    p = phone("+221770000001")
    p.dial()
    assert p.answer("5") == TRACK_FR
    listing = p.answer("1")
    assert listing == (f"CON Vos demandes (choisissez):\n1. {made['arrangement_id']} Paiement échelonné en cours\n"
                       "0. Retour 00. Accueil")
    assert p.answer("1") == (f"CON {made['arrangement_id']}\nPaiement échelonné: en cours\n"
                             f"Demande du {_date(made['created_on'])}\nÉchéances: 2\n"
                             f"Prochaine: 6 250 FCFA le {_date(first['due_on'])}\n0. Retour 00. Accueil")
    assert p.answer("0") == listing


def test_an_arrangement_is_found_by_its_reference_in_english(phone, backoffice_url):
    made = _arrangement(backoffice_url, "2000001", "deferral", 1)
    p = phone("+221770000002")
    p.dial()
    p.answer("1")
    p.answer("5")
    p.answer("2")
    typed = made["arrangement_id"].lower().replace("-", " ")        # as a customer might type it
    assert p.answer(typed) == (f"CON {made['arrangement_id']}\nDeferral: running\n"
                               f"Requested on {_date(made['created_on'])}\nPayments: 1\n"
                               f"Next: 185,200 FCFA on {_date(made['schedule'][0]['due_on'])}\n0. Back 00. Home")


def test_another_accounts_arrangement_is_not_shown(phone, backoffice_url):
    made = _arrangement(backoffice_url, "2000001", "deferral", 1)
    p = phone("+221770000001")
    p.dial()
    p.answer("5")
    p.answer("2")
    assert p.answer(made["arrangement_id"]).startswith(
        f"CON Aucune demande trouvée avec la référence {made['arrangement_id']}.")
