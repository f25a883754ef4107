"""Transcripts over the USSD callback: outage reports, complaints, reports kept when the
incident system is down (then forwarded by ``resend_pending_tickets``), and the same report
made twice (from two sessions, after a resume) answered with the earlier reference.

Real Flask app, real Redis sessions, the reference back office served on loopback. For "down",
the back office is served behind a switch that answers 503 on the incident paths only, so the
customer can still be identified (billing) while tickets cannot be opened.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import flask
import pytest
import redis
import requests

from app.factory import create_app
from app.settings import Settings
from dialogs.codes import hash_code
from dialogs.incidents import resend_pending_tickets
from engine.types import Turn

from ..support.engine import UssdPhone
from ..support.incident_switch import IncidentSwitch
from ..support.services import clean_redis, serve_wsgi

INCIDENT_FR = ("CON Panne ou réclamation:\n1. Signaler une panne\n2. Faire une réclamation\n"
               "0. Retour 00. Accueil")
INCIDENT_EN = "CON Outage or complaint:\n1. Report an outage\n2. Make a complaint\n0. Back 00. Home"
COMPLAINT_FR = ("CON Votre réclamation concerne:\n1. Contestation de facture\n2. Problème de compteur\n"
                "3. Qualité du courant\n4. Autre\n0. Retour 00. Accueil")
FR_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre")
DESCRIBE_FR = ("CON Décrivez le problème en quelques mots (160 caractères max), ou tapez 1 pour passer:\n"
               "0. Retour 00. Accueil")
DESCRIBE_EN = ("CON Describe the problem in a few words (160 characters max), or type 1 to skip:\n"
               "0. Back 00. Home")
REFERENCE = re.compile(r"Référence: ((INC|REC)-[2-9A-Z]{4})|Reference: ((INC|REC)-[2-9A-Z]{4})")


def _reference(screen: str) -> str:
    found = REFERENCE.search(screen)
    assert found, screen
    return found.group(1) or found.group(3)


def _tickets(backoffice_url: str, account: str) -> list[dict[str, Any]]:
    response = requests.get(f"{backoffice_url}/api/v1/tickets", params={"account_number": account}, timeout=5)
    response.raise_for_status()
    return list(response.json()["tickets"])


def _keys(p: UssdPhone, *inputs: str) -> str:
    """Several inputs in a row (a path already shown elsewhere); the last screen."""
    screen = ""
    for value in inputs:
        screen = p.answer(value)
    return screen


def _bills(backoffice_url: str, account: str) -> list[dict[str, Any]]:
    response = requests.get(f"{backoffice_url}/api/v1/accounts/{account}/bills", params={"limit": 6}, timeout=5)
    response.raise_for_status()
    return list(response.json()["bills"])


def _bill_fr(bill: dict[str, Any]) -> str:
    """A bill as the French screens name it: ``novembre 2026 5 500 FCFA``."""
    year, month = bill["period"].split("-")
    amount = f"{int(Decimal(bill['amount'])):,}".replace(",", " ")
    return f"{FR_MONTHS[int(month) - 1]} {year} {amount} FCFA"


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
    assert p.answer("2").startswith("CON ElecNet - 2000002")
    assert p.answer("4") == INCIDENT_EN
    assert p.answer("1") == (
        "CON An outage is already known in your area (THIES-NORD). Power expected back: "
        f"{_hhmm(outage['estimated_restoration'])}.\n1. Alert me when power is back\n2. Fault at my home only\n"
        "0. Back 00. Home")
    assert p.answer("1") == ("CON You will be told by SMS when power is back in your area (THIES-NORD).\n"
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
                             "interviennent.\n1. Alerte au retour du courant\n2. Panne chez moi seulement\n"
                             "0. Retour 00. Accueil")
    assert p.answer("1") == ("CON Vous serez prévenu par SMS au retour du courant dans votre zone (DKR-MEDINA).\n"
                             "0. Retour 00. Accueil")
    subscriptions = app.extensions["parts"]["deps"].subscriptions.for_user("+221770000001")
    assert [(s.topic, s.scope) for s in subscriptions] == [("power_back", created.json()["outage_id"])]


def test_the_power_back_alert_names_the_channel_the_customer_chose(phone, app, settings):
    # The alert goes where the customer's messages go: the screen must not send them looking for an SMS.
    contacts = app.extensions["parts"]["deps"].contacts

    def alert_me() -> str:
        """Account 2000002 (THIES-NORD, where an outage is known): Outage, then "Alert me when power is back"."""
        p = phone("+221770000002")
        p.dial()
        p.answer("2")
        p.answer("4")
        p.answer("1")
        return p.answer("1")

    contacts.set_channel("+221770000002", "whatsapp", via="ussd", source="menu")
    assert alert_me() == ("CON You will be told by WhatsApp when power is back in your area (THIES-NORD).\n"
                          "0. Back 00. Home")
    contacts.stage_email("+221770000002", "sahel@exemple.sn", hash_code("123456"),
                         settings.clock() + timedelta(minutes=30))
    assert contacts.confirm_email("+221770000002", "123456", settings.clock(), via="ussd", source="menu") == "ok"
    contacts.set_channel("+221770000002", "email", via="ussd", source="menu")
    assert alert_me() == ("CON You will be told by e-mail when power is back in your area (THIES-NORD).\n"
                          "0. Back 00. Home")


def test_in_a_zone_with_a_known_outage_a_fault_at_home_can_still_be_reported(phone, backoffice_url):
    p = phone("+221770000002")
    p.dial()
    p.answer("2")
    p.answer("4")
    assert p.answer("1").endswith("1. Alert me when power is back\n2. Fault at my home only\n0. Back 00. Home")
    assert p.answer("2") == ("CON Report a fault at your home only (not the area outage)\nAccount 2000002\n"
                             "1. Confirm\n2. Cancel\n0. Back 00. Home")
    assert _tickets(backoffice_url, "2000002") == []          # nothing filed before the confirmation
    screen = p.answer("1")
    reference = _reference(screen)
    assert screen == (f"CON Outage reported. Reference: {reference}\nTo track it: menu 5, or text TRACK {reference}.\n"
                      "0. Back 00. Home")
    [ticket] = _tickets(backoffice_url, "2000002")
    assert (ticket["reference"], ticket["kind"], ticket["description"]) == (
        reference, "outage", "Fault limited to the customer's home (area outage known)")


def test_back_after_a_fault_at_home_is_filed_leads_home_not_into_its_confirmation(phone, backoffice_url):
    p = phone("+221770000002")
    p.dial()
    p.answer("2")
    p.answer("4")
    p.answer("1")
    p.answer("2")                                             # fault at my home only
    reference = _reference(p.answer("1"))
    assert p.answer("0").startswith("CON ElecNet - 2000002\n1. Balance and bills")
    assert [t["reference"] for t in _tickets(backoffice_url, "2000002")] == [reference]


def test_an_outage_report_waits_for_the_confirmation(phone, backoffice_url):
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    assert p.answer("1") == ("CON Signaler une panne de courant\nCompte 1000001, zone DKR-MEDINA\n1. Confirmer\n"
                             "2. Annuler\n0. Retour 00. Accueil")
    assert p.answer("0") == INCIDENT_FR                        # changed their mind: nothing reported
    assert _tickets(backoffice_url, "1000001") == []


def test_an_outage_report_cancelled_files_nothing_and_leads_to_the_main_menu(phone, backoffice_url):
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    p.answer("1")
    assert p.answer("2") == "CON Demande annulée. Rien n'a été enregistré.\n1. Menu principal\n0. Retour 00. Accueil"
    assert _tickets(backoffice_url, "1000001") == []
    assert p.answer("1").startswith("CON ElecNet - 1000001\n1. Solde et factures")


def test_no_known_outage_opens_a_ticket_in_french(phone, backoffice_url):
    p = phone("+221770000001")
    p.dial()
    assert p.answer("4") == INCIDENT_FR
    assert p.answer("1").startswith("CON Signaler une panne de courant\nCompte 1000001")
    screen = p.answer("1")
    reference = _reference(screen)
    assert reference.startswith("INC-")
    assert screen == (f"CON Panne signalée. Référence: {reference}\nPour la suivre: menu 5, ou envoyez SUIVI "
                      f"{reference} par SMS.\n0. Retour 00. Accueil")
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
    if category == "billing":
        assert p.answer(choice).startswith("CON Quelle facture contestez-vous ?\n1. ")
        assert p.answer("1") == DESCRIBE_FR
    else:
        assert p.answer(choice) == DESCRIBE_FR
    confirm = p.answer("1")                                  # 1: no description
    assert confirm.startswith(f"CON Réclamation: {label}\nCompte 1000001\n")
    assert confirm.endswith("1. Confirmer\n2. Annuler\n0. Retour 00. Accueil")
    screen = p.answer("1")
    reference = _reference(screen)
    assert reference.startswith("REC-")
    assert screen == (f"CON Réclamation enregistrée. Référence: {reference}\nPour la suivre: menu 5, ou envoyez "
                      f"SUIVI {reference} par SMS.\n0. Retour 00. Accueil")
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
    assert p.answer("2") == DESCRIBE_EN
    assert p.answer("1") == "CON Complaint: Meter problem\nAccount 2000003\n1. Confirm\n2. Cancel\n0. Back 00. Home"
    screen = p.answer("1")
    reference = _reference(screen)
    assert screen == (f"CON Complaint filed. Reference: {reference}\nTo track it: menu 5, or text TRACK {reference}.\n"
                      "0. Back 00. Home")
    assert [t["reference"] for t in _tickets(backoffice_url, "2000003")] == [reference]


def test_a_complaint_cancelled_in_english_files_nothing(phone, backoffice_url):
    p = phone("+221770000002")
    p.dial()
    _keys(p, "3", "4", "2", "2", "1")                         # account 2000003, meter problem, no description
    assert p.answer("2") == "CON Request cancelled. Nothing was filed.\n1. Main menu\n0. Back 00. Home"
    assert _tickets(backoffice_url, "2000003") == []
    assert p.answer("1").startswith("CON ElecNet - 2000003\n1. Balance and bills")


def test_a_replayed_or_repeated_hop_does_not_open_two_tickets(phone, backoffice_url, redis_url):
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    p.answer("2")
    p.answer("2")          # meter problem
    p.answer("1")          # no description
    first = p.answer("1")
    reference = _reference(first)
    # The gateway sends the same hop again: the engine answers from its record.
    assert p.post("*".join(p.inputs)) == first
    # The session record is lost (Redis flushed) and the gateway replays the whole text: the
    # step runs again with the same client reference, and the back office gives the same ticket.
    clean_redis(redis.Redis.from_url(redis_url))   # this run's own database only
    assert p.post("*".join(p.inputs)) == first
    # Back after the commit leads to the main menu; the same complaint again in the same session:
    # still the same ticket.
    assert p.answer("0").startswith("CON ElecNet - 1000001\n1. Solde et factures")
    p.answer("4")
    p.answer("2")
    p.answer("2")          # meter problem
    assert p.answer("1").startswith("CON Réclamation: Problème de compteur")
    assert p.answer("1") == first
    assert [t["reference"] for t in _tickets(backoffice_url, "1000001")] == [reference]
    # Another category in the same session is another complaint.
    other = _reference(_keys(p, "00", "4", "2", "3", "1", "1"))     # supply quality, no description
    assert other != reference
    assert {t["reference"] for t in _tickets(backoffice_url, "1000001")} == {reference, other}


# ---------------------------------------------------------------- the customer's words
WORDS = "Meter runs fast at night, since May. Neighbour has the same model"


def test_a_complaint_keeps_the_customers_own_words_and_nowhere_else(phone, backoffice_url, redis_url, caplog):
    caplog.set_level(logging.DEBUG)
    p = phone("+221770000002")
    p.dial()
    p.answer("3")
    p.answer("4")
    p.answer("2")
    assert p.answer("2") == DESCRIBE_EN
    assert p.answer(WORDS) == "CON Complaint: Meter problem\nAccount 2000003\n1. Confirm\n2. Cancel\n0. Back 00. Home"
    reference = _reference(p.answer("1"))
    [ticket] = _tickets(backoffice_url, "2000003")
    assert (ticket["reference"], ticket["description"]) == (reference, WORDS)
    # Personal data: in the ticket, not in a log line, and gone from the session once filed.
    assert not [r for r in caplog.records if "runs fast" in r.getMessage()]
    store = redis.Redis.from_url(redis_url)
    assert not [k for k in store.scan_iter() if store.type(k) == b"string" and b"runs fast" in (store.get(k) or b"")]


def test_words_with_accents_and_apostrophes_reach_the_ticket_as_typed(app, backoffice_url):
    """Through the engine, as the USSD adapter hands it any text a handset can send."""
    engine = app.extensions["engine"]
    words = "Compteur bloqué depuis l'orage ! Facture d'octobre trop élevée ?"
    hops = [None, "4", "2", "2", words, "1"]
    screens = [engine.handle(Turn("ussd", "+221770000001", "ussd:words-1", value, f"h{i}",
                                  customer="+221770000001")).text
               for i, value in enumerate(hops)]
    assert screens[-2] == "Réclamation: Problème de compteur\nCompte 1000001\n1. Confirmer\n2. Annuler\n0. Retour 00. Accueil"
    reference = _reference(screens[-1])
    [ticket] = _tickets(backoffice_url, "1000001")
    assert (ticket["reference"], ticket["description"]) == (reference, words)


def test_a_description_longer_than_160_characters_is_asked_again(phone, backoffice_url):
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    p.answer("2")
    p.answer("4")                                             # other
    too_long = "x" * 161
    assert p.answer(too_long) == ("CON Description trop longue: 160 caractères au plus.\n"
                                  + DESCRIBE_FR.removeprefix("CON "))
    assert p.answer("y" * 160).startswith("CON Réclamation: Autre\nCompte 1000001\n1. Confirmer")
    p.answer("1")
    [ticket] = _tickets(backoffice_url, "1000001")
    assert ticket["description"] == "y" * 160


def test_a_billing_dispute_names_the_disputed_bill(phone, backoffice_url):
    bills = _bills(backoffice_url, "1000001")
    assert len(bills) >= 2
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    p.answer("2")
    # The six latest bills, most recent first (paged: they do not fit one screen).
    assert p.answer("1").startswith(f"CON Quelle facture contestez-vous ?\n1. {_bill_fr(bills[0])}\n"
                                    f"2. {_bill_fr(bills[1])}\n")
    assert p.answer("2") == DESCRIBE_FR
    assert p.answer("Index read twice") == (f"CON Réclamation: Contestation de facture\nCompte 1000001\n"
                                            f"Facture {_bill_fr(bills[1])}\n1. Confirmer\n2. Annuler\n0. Retour 00. Accueil")
    second = _reference(p.answer("1"))
    # Disputing another bill is another complaint; the same bill again is the same one.
    again = phone("+221770000001")
    again.dial()
    first = _reference(_keys(again, "4", "2", "1", "1", "1", "1"))   # the latest bill, no description
    assert first != second
    tickets = {t["reference"]: t for t in _tickets(backoffice_url, "1000001")}
    assert {r: t["bill_id"] for r, t in tickets.items()} == {first: bills[0]["bill_id"],
                                                              second: bills[1]["bill_id"]}
    assert tickets[second]["description"] == "Index read twice"
    assert tickets[first]["description"] == "Billing dispute"


# ---------------------------------------------------------------- the same report twice
def _meter_complaint(p: UssdPhone) -> str:
    p.dial()
    return _keys(p, "4", "2", "2", "1", "1")                    # meter problem, no description, confirm


def test_the_same_complaint_from_a_second_session_gives_the_earlier_reference(phone, backoffice_url):
    reference = _reference(_meter_complaint(phone("+221770000001")))
    assert _meter_complaint(phone("+221770000001")) == (
        f"CON Vous l'avez déjà signalé, la demande est en cours. Référence: {reference}\n"
        f"Pour la suivre: menu 5, ou envoyez SUIVI {reference} par SMS.\n0. Retour 00. Accueil")
    assert [t["reference"] for t in _tickets(backoffice_url, "1000001")] == [reference]
    # Once that ticket is resolved, the same problem again is a new complaint.
    requests.post(f"{backoffice_url}/api/v1/tickets/{reference}/status", json={"status": "resolved"},
                  timeout=5).raise_for_status()
    other = _reference(_meter_complaint(phone("+221770000001")))
    assert other != reference
    assert {t["reference"] for t in _tickets(backoffice_url, "1000001")} == {reference, other}


def test_an_outage_reported_from_two_sessions_is_one_ticket(phone, backoffice_url):
    one, two = phone("+221770000001"), phone("+221770000001")
    for p in (one, two):                                      # both on the confirmation at once
        p.dial()
        p.answer("4")
        assert p.answer("1").startswith("CON Signaler une panne de courant")
    reference = _reference(one.answer("1"))
    assert two.answer("1") == (f"CON Vous l'avez déjà signalé, la demande est en cours. Référence: {reference}\n"
                               f"Pour la suivre: menu 5, ou envoyez SUIVI {reference} par SMS.\n0. Retour 00. Accueil")
    assert [t["reference"] for t in _tickets(backoffice_url, "1000001")] == [reference]


def test_back_from_already_reported_leads_to_the_main_menu_never_to_the_refused_confirmation(phone, backoffice_url):
    reference = _reference(_meter_complaint(phone("+221770000001")))
    again = phone("+221770000001")
    assert _meter_complaint(again).startswith("CON Vous l'avez déjà signalé, la demande est en cours.")
    assert again.answer("0").startswith("CON ElecNet - 1000001\n1. Solde et factures")
    assert [t["reference"] for t in _tickets(backoffice_url, "1000001")] == [reference]
    # An outage, in English: the same.
    screens = []
    for _ in range(2):
        p = phone("+221770000002")
        p.dial()
        screens.append(_keys(p, "1", "4", "1", "1"))           # first account, outage, confirm
    reported = _reference(screens[0])
    assert screens[1] == (f"CON You already reported this and it is being handled. Reference: {reported}\n"
                          f"To track it: menu 5, or text TRACK {reported}.\n0. Back 00. Home")
    assert p.answer("0").startswith("CON ElecNet - 2000001\n1. Balance and bills")


def test_a_resumed_session_does_not_file_the_complaint_twice(settings, backoffice_url):
    app = create_app(replace(settings, resume_window_seconds=120))
    client = app.test_client()
    dropped = UssdPhone(client, "+221770000001")
    dropped.dial()
    dropped.answer("4")
    dropped.answer("2")
    dropped.answer("2")
    assert dropped.answer("1").startswith("CON Réclamation: Problème de compteur")   # then the call drops
    redial = UssdPhone(client, "+221770000001")
    assert redial.dial() == "CON Reprendre votre réclamation ?\n1. Oui\n2. Non"
    assert redial.answer("1").startswith("CON Réclamation: Problème de compteur")
    reference = _reference(redial.answer("1"))
    # The dropped session's gateway hop arrives late: that session was closed when the redial took it
    # over, so nothing of it runs again (and the complaint, already filed, is not filed twice).
    assert dropped.answer("1") == "END Cette session est terminée. Merci de recomposer le code."
    assert [t["reference"] for t in _tickets(backoffice_url, "1000001")] == [reference]


@pytest.mark.parametrize("keys, confirmation, offer", [
    (("4", "1"), "CON Signaler une panne de courant\nCompte 1000001", "CON Reprendre votre signalement de panne ?"),
    (("4", "2", "1", "2", "1"), "CON Réclamation: Contestation de facture\nCompte 1000001\nFacture octobre 2026",
     "CON Reprendre votre réclamation ?"),
], ids=["outage", "billing dispute"])
def test_a_call_dropped_on_a_report_to_confirm_offers_to_continue_it(settings, backoffice_url, keys, confirmation,
                                                                     offer):
    app = create_app(replace(settings, resume_window_seconds=120))
    client = app.test_client()
    dropped = UssdPhone(client, "+221770000001")
    dropped.dial()
    for key in keys:
        screen = dropped.answer(key)
    assert screen.startswith(confirmation)                     # then the call drops
    redial = UssdPhone(client, "+221770000001")
    assert redial.dial() == f"{offer}\n1. Oui\n2. Non"
    assert redial.answer("1") == screen
    _reference(redial.answer("1"))
    assert len(_tickets(backoffice_url, "1000001")) == 1


def test_the_same_outage_kept_while_the_incident_system_is_down_is_kept_once(switch, switched_app,
                                                                            backoffice_url):
    gate, _ = switch
    deps = switched_app.extensions["parts"]["deps"]
    gate.down = True
    screens = []
    for _ in range(2):
        p = UssdPhone(switched_app.test_client(), "+221770000001")
        p.dial()
        p.answer("4")
        p.answer("1")
        screens.append(p.answer("1"))
    local = re.search(r"référence (INC-[2-9A-Z]{4})\.", screens[0])
    assert local, screens[0]
    assert screens[1] == (f"CON Vous l'avez déjà signalé, la demande est en cours. Référence: {local.group(1)}\n"
                          f"Pour la suivre: menu 5, ou envoyez SUIVI {local.group(1)} par SMS.\n0. Retour 00. Accueil")
    assert len(deps.pending_tickets.for_user("+221770000001")) == 1
    gate.down = False
    assert resend_pending_tickets(deps.incidents, deps.pending_tickets) == 1
    assert len(_tickets(backoffice_url, "1000001")) == 1


# ---------------------------------------------------------------- incident system down
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
    p.answer("1")
    p.answer("1")          # the first bill
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
    p.answer("1")                # the outage check is down too: the report is kept rather than lost
    screen = p.answer("1")
    local = re.search(r"reference (INC-[2-9A-Z]{4})\.", screen)
    assert local, screen
    assert screen == (f"CON Outage recorded under reference {local.group(1)}. It will be forwarded to our "
                      "teams as soon as possible.\n0. Back 00. Home")
    [kept] = deps.pending_tickets.for_user("+221770000002")
    assert (kept.kind, kept.category, kept.account_number, kept.status) == ("outage", "outage", "2000002",
                                                                            "pending")
    # Reporting it again in the same session keeps it once (Back leads to the main menu).
    assert p.answer("0").startswith("CON ElecNet - 2000002\n1. Balance and bills")
    p.answer("4")
    assert p.answer("1").startswith("CON Report a power outage\nAccount 2000002")
    assert p.answer("1") == screen
    assert len(deps.pending_tickets.for_user("+221770000002")) == 1

    gate.down = False
    assert resend_pending_tickets(deps.incidents, deps.pending_tickets) == 1
    [ticket] = _tickets(backoffice_url, "2000002")
    assert (ticket["kind"], ticket["category"]) == ("outage", "outage")
