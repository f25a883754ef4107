"""Transcripts of the payment deferral / instalments journey: eligibility with one reason per
refusal, the schedule, the PIN gate, creation in the back office (once), back office down.

Demo data: 1000001 owes 12 500 (eligible), 2000001 owes 185 200, 3000001 is prepaid.
Rules: config/arrangements.yaml (at least 5 000 due, one arrangement per 6 months, 2 to 6 instalments).

The engine and the back office share one clock, ``product_clock``, never the wall clock: by default
half a minute before midnight on 31 January (every date a month on is clipped to February's end);
the journeys that show dates run again at a year's end and at midnight after February, and some
move the clock across midnight mid-journey or to the first day a refusal promised.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from dialogs.arrangements import add_months, idempotency_key
from tests.support.clock import SettableClock

PIN = "2468"

JAN_31_LATE = datetime(2027, 1, 31, 23, 59, 30, tzinfo=UTC)
DATED = pytest.mark.parametrize("product_clock", [
    JAN_31_LATE,                                           # Feb 28, then Mar 31
    datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC),       # a year's end: Jan 31, then Feb 28 of the next year
    datetime(2027, 3, 1, 0, 0, 0, tzinfo=UTC),            # midnight after February: Apr 1, then May 1
], ids=["jan-31st-23:59:30", "dec-31st-23:59:30", "march-1st-00:00"], indirect=True)


@pytest.fixture
def product_clock(request: pytest.FixtureRequest) -> SettableClock:
    """The clock of the engine and of the back office in this module (see the module's docstring)."""
    return SettableClock(getattr(request, "param", JAN_31_LATE))


def today(clock: SettableClock) -> date:
    return clock.now.date()


def fr_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def arrangements(url: str, account: str) -> list[dict]:
    response = requests.get(f"{url}/api/v1/accounts/{account}/arrangements", timeout=5)
    response.raise_for_status()
    return response.json()["arrangements"]


@DATED
def test_instalments_in_french_then_a_second_request_is_refused(phone, backoffice_url, product_clock):
    p = phone("+221770000001")
    p.dial()
    first, second, third = (add_months(today(product_clock), n) for n in (1, 2, 3))
    assert p.answer("6") == (f"CON Montant à payer: 12 500 FCFA. Comment souhaitez-vous le régler ?\n"
                             f"1. Tout payer le {fr_date(first)}\n2. En plusieurs mensualités\n"
                             "0. Retour 00. Accueil")
    assert p.answer("2") == ("CON Nombre de mensualités:\n1. 2 x ~6 250 FCFA\n2. 3 x ~4 166 FCFA\n"
                             "3. 4 x ~3 125 FCFA\n4. 5 x ~2 500 FCFA\n5. 6 x ~2 083 FCFA\n0. Retour 00. Accueil")
    # 12 500 / 3: 4 166 twice, the remainder on the first instalment.
    assert p.answer("2") == (f"CON 3 mensualités:\n{fr_date(first)}: 4 168 FCFA\n{fr_date(second)}: 4 166 FCFA\n"
                             f"{fr_date(third)}: 4 166 FCFA\n1. Confirmer\n2. Annuler\n0. Retour 00. Accueil")
    assert arrangements(backoffice_url, "1000001") == []
    assert p.answer("1").startswith("CON Premier usage. Pour vérifier, entrez le montant de la dernière facture")
    assert p.answer("5500").startswith("CON Premier usage: choisissez un code PIN secret (4 chiffres):")
    assert p.answer(PIN).startswith("CON Confirmez votre code PIN:")
    done = p.answer(PIN)
    [made] = arrangements(backoffice_url, "1000001")
    assert (made["kind"], made["months"], made["status"]) == ("instalments", 3, "active")
    assert made["created_on"] == today(product_clock).isoformat()
    assert [s["amount"] for s in made["schedule"]] == ["4168", "4166", "4166"]   # as previewed
    assert [s["due_on"] for s in made["schedule"]][:2] == [first.isoformat(), second.isoformat()]
    assert done == (f"CON Demande enregistrée.\nRéférence: {made['arrangement_id']}\n"
                    f"Première échéance: 4 168 FCFA le {fr_date(first)}\n1. Menu principal\n0. Retour 00. Accueil")
    assert p.post("*".join(p.inputs)) == done            # the gateway replays the hop: same answer
    assert len(arrangements(backoffice_url, "1000001")) == 1
    assert p.answer("1").startswith("CON ElecNet - 1000001")   # back to the menu, then hangs up

    again = phone("+221770000001")                               # dials *123*6# straight to the journey
    assert again.dial("6") == (f"CON Un délai de paiement est déjà en cours sur ce compte "
                                 f"({made['arrangement_id']}). Une seule demande à la fois.\n0. Retour 00. Accueil")
    assert len(arrangements(backoffice_url, "1000001")) == 1


@DATED
def test_deferral_in_english_after_choosing_an_account(phone, backoffice_url, product_clock):
    p = phone("+221770000002")
    assert p.dial().startswith("CON Choose an account:")
    assert p.answer("1").startswith("CON ElecNet - 2000001")
    due = add_months(today(product_clock), 1)
    assert p.answer("6") == (f"CON Balance due: 185,200 FCFA. How would you like to pay?\n"
                             f"1. All of it on {fr_date(due)}\n2. In monthly instalments\n0. Back 00. Home")
    assert p.answer("1") == (f"CON Deferral: 185,200 FCFA to pay by {fr_date(due)}.\n1. Confirm\n2. Cancel\n"
                             "0. Back 00. Home")
    assert p.answer("1").startswith("CON First use. To check, enter the amount of the last bill of account 2000001")
    assert p.answer("185200") == "CON First use: choose a secret PIN (4 digits):\n0. Back 00. Home"
    p.answer("1357")
    done = p.answer("1357")
    [made] = arrangements(backoffice_url, "2000001")
    assert made["kind"] == "deferral" and made["months"] == 1
    assert made["schedule"] == [{"due_on": due.isoformat(), "amount": "185200"}]
    assert done == (f"CON Request recorded.\nReference: {made['arrangement_id']}\nFirst payment: 185,200 FCFA on "
                    f"{fr_date(due)}\n1. Main menu\n0. Back 00. Home")
    assert arrangements(backoffice_url, "2000002") == []


def test_two_instalments_show_both_without_dots_and_cancel_records_nothing(phone, backoffice_url):
    p = phone("+221770000001")
    p.dial()
    p.answer("6")
    p.answer("2")
    assert p.answer("1") == ("CON 2 mensualités:\n28/02/2027: 6 250 FCFA\n31/03/2027: 6 250 FCFA\n"
                             "1. Confirmer\n2. Annuler\n0. Retour 00. Accueil")
    assert p.answer("2") == ("CON Demande annulée. Rien n'a été enregistré.\n1. Menu principal\n"
                             "0. Retour 00. Accueil")
    assert arrangements(backoffice_url, "1000001") == []
    assert p.answer("1").startswith("CON ElecNet - 1000001\n1. Solde et factures")


def test_six_instalments_show_when_the_last_one_falls_before_the_confirmation(phone):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")                                          # 2000001: 185,200 FCFA due
    p.answer("6")
    p.answer("2")
    assert p.answer("5") == ("CON 6 instalments:\n28/02/2027: 30,870 FCFA\n31/03/2027: 30,866 FCFA\n...\n"
                             "31/07/2027: 30,866 FCFA\n1. Confirm\n2. Cancel\n0. Back 00. Home")
    assert p.answer("2") == "CON Request cancelled. Nothing was recorded.\n1. Main menu\n0. Back 00. Home"


def test_the_pin_is_asked_when_already_chosen_and_a_wrong_pin_creates_nothing(phone, backoffice_url):
    p = phone("+221770000002")
    p.dial()
    p.answer("3")                                          # 2000003
    p.answer("8")                                          # Preferences: choose a PIN first
    p.answer("3")
    p.answer("46100")                                      # the last bill of 2000003: proof for a first PIN
    p.answer("1357")
    p.answer("1357")
    assert p.answer("00").startswith("CON ElecNet - 2000003")
    p.answer("6")
    p.answer("2")
    p.answer("5")                                          # 6 instalments
    assert p.answer("1") == "CON Enter your PIN (4 digits):\n0. Back 00. Home"
    assert p.answer("9999").startswith("CON Wrong PIN. Tries left: 2.")
    assert arrangements(backoffice_url, "2000003") == []
    assert p.answer("1357").startswith("CON Request recorded.")
    [made] = arrangements(backoffice_url, "2000003")
    assert (made["kind"], made["months"]) == ("instalments", 6)


# ---------------------------------------------------------------- not eligible: one reason each
def test_a_prepaid_meter_is_not_eligible(phone):
    p = phone("+221770000003")
    assert p.dial().startswith("CON ElecNet - 3000001")
    assert p.answer("6") == ("CON Compteur prépayé: vous n'avez pas de facture à reporter. Pour du crédit, "
                             "choisissez Payer au menu.\n0. Retour 00. Accueil")


def test_a_balance_under_the_minimum_is_not_eligible(phone, backoffice_url):
    # Pay 8 000 of the 12 500 through the mobile-money stand-in: 4 500 left, under the 5 000 minimum.
    created = requests.post(f"{backoffice_url}/api/v1/payments", headers={"Idempotency-Key": uuid.uuid4().hex},
                            json={"account_number": "1000001", "msisdn": "+221770000001", "amount": "8000",
                                  "purpose": "bill"}, timeout=5)
    assert created.status_code == 202, created.text
    approved = requests.post(f"{backoffice_url}/api/v1/payments/{created.json()['payment_id']}/approve", timeout=5)
    assert approved.ok, approved.text
    p = phone("+221770000001")
    p.dial()
    assert p.answer("6") == ("CON Montant à payer: 4 500 FCFA. Un délai est possible dès 5 000 FCFA à payer.\n"
                             "0. Retour 00. Accueil")


def test_one_arrangement_per_six_months(phone, backoffice_url, backoffice_app, product_clock):
    made = requests.post(f"{backoffice_url}/api/v1/accounts/1000001/arrangements",
                         headers={"Idempotency-Key": uuid.uuid4().hex}, json={"kind": "deferral", "months": 1},
                         timeout=5)
    assert made.status_code == 201, made.text
    # The agents' side closes it (the stand-in has no API for that): it is no longer running.
    from backoffice.models import Arrangement

    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        session.get(Arrangement, made.json()["arrangement_id"]).status = "completed"
    p = phone("+221770000001")
    p.dial()
    assert p.answer("6") == ("CON Un seul délai de paiement par 6 mois. Le dernier date du 31/01/2027; "
                             "nouvelle demande possible dès le 31/07/2027.\n0. Retour 00. Accueil")


def _closed_arrangement(backoffice_url: str, backoffice_app, account: str) -> dict:
    """An arrangement made through the API on the back office's clock, then closed by the agents' side."""
    from backoffice.models import Arrangement

    made = requests.post(f"{backoffice_url}/api/v1/accounts/{account}/arrangements",
                         headers={"Idempotency-Key": uuid.uuid4().hex}, json={"kind": "deferral", "months": 1},
                         timeout=5)
    assert made.status_code == 201, made.text
    with backoffice_app.extensions["backoffice"].sessions() as session, session.begin():
        session.get(Arrangement, made.json()["arrangement_id"]).status = "completed"
    return dict(made.json())


@pytest.mark.parametrize("product_clock, refused_until", [
    (datetime(2026, 8, 31, 12, 0, tzinfo=UTC), "28/02/2027"),   # six months on from the 31st: February's end
    (datetime(2027, 1, 31, 23, 59, 30, tzinfo=UTC), "31/07/2027"),
], ids=["aug-31st", "jan-31st-23:59:30"], indirect=["product_clock"])
def test_a_new_request_opens_at_midnight_on_the_day_the_refusal_named(phone, backoffice_url, backoffice_app,
                                                                    product_clock, refused_until):
    made = _closed_arrangement(backoffice_url, backoffice_app, "1000001")
    named = datetime.strptime(refused_until, "%d/%m/%Y").replace(tzinfo=UTC)
    product_clock.now = named - timedelta(seconds=1)     # 23:59:59 the day before
    p = phone("+221770000001")
    p.dial()
    assert p.answer("6") == (f"CON Un seul délai de paiement par 6 mois. Le dernier date du "
                             f"{fr_date(date.fromisoformat(made['created_on']))}; nouvelle demande possible dès le "
                             f"{refused_until}.\n0. Retour 00. Accueil")
    product_clock.advance(seconds=1)                      # midnight: the day the screen named
    again = phone("+221770000001")
    again.dial()
    assert again.answer("6").startswith("CON Montant à payer: 12 500 FCFA. Comment souhaitez-vous le régler ?")


def test_a_plan_confirmed_after_midnight_is_dated_from_the_day_it_is_recorded(phone, backoffice_url, product_clock):
    """Previewed at 23:59:30 on 31 January (due 28 February), confirmed a minute later on 1 February:
    the customer is told the due date the billing system recorded, 1 March, not the preview's."""
    p = phone("+221770000001")
    p.dial()
    assert p.answer("6").startswith("CON Montant à payer: 12 500 FCFA. Comment souhaitez-vous le régler ?\n"
                                    "1. Tout payer le 28/02/2027\n")
    assert p.answer("1") == ("CON Report: 12 500 FCFA à payer au plus tard le 28/02/2027.\n1. Confirmer\n2. Annuler\n"
                             "0. Retour 00. Accueil")
    p.answer("1")                                          # confirm
    p.answer("5500")                                       # the last bill: proof for a first PIN
    p.answer(PIN)
    product_clock.advance(minutes=1)
    done = p.answer(PIN)
    [made] = arrangements(backoffice_url, "1000001")
    assert made["created_on"] == "2027-02-01"
    assert made["schedule"] == [{"due_on": "2027-03-01", "amount": "12500"}]
    assert done == (f"CON Demande enregistrée.\nRéférence: {made['arrangement_id']}\n"
                    "Première échéance: 12 500 FCFA le 01/03/2027\n1. Menu principal\n0. Retour 00. Accueil")


def test_the_balance_shows_the_payment_due_today_until_midnight_then_the_next(phone, backoffice_url, product_clock):
    made = requests.post(f"{backoffice_url}/api/v1/accounts/1000001/arrangements",
                         headers={"Idempotency-Key": uuid.uuid4().hex}, json={"kind": "instalments", "months": 2},
                         timeout=5)
    assert made.status_code == 201, made.text
    reference = made.json()["arrangement_id"]
    product_clock.now = datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC)   # the first instalment's day
    p = phone("+221770000001")
    p.dial()
    assert p.answer("1") == ("CON Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n"
                             f"Paiement échelonné {reference}\nÉchéance du 28/02/2027: 6 250 FCFA\n"
                             "1. Dernières factures\n0. Retour 00. Accueil")
    product_clock.advance(seconds=1)                      # 1 March: the second instalment comes next
    again = phone("+221770000001")
    again.dial()
    assert again.answer("1") == ("CON Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n"
                                 f"Paiement échelonné {reference}\nÉchéance du 31/03/2027: 6 250 FCFA\n"
                                 "1. Dernières factures\n0. Retour 00. Accueil")


def test_the_idempotency_key_depends_on_the_conversation_only():
    assert idempotency_key("ussd:ATUid_1") == idempotency_key("ussd:ATUid_1")
    assert idempotency_key("ussd:ATUid_1") != idempotency_key("ussd:ATUid_2")
    assert len(idempotency_key("ussd:" + "x" * 128)) <= 200


# ---------------------------------------------------------------- back office down



def test_back_office_down_when_checking(stoppable):
    p, stop_backoffice = stoppable
    p.dial()
    stop_backoffice()
    assert p.answer("6") == ("CON Nous ne pouvons pas vérifier votre compte pour le moment. Merci de réessayer "
                             "plus tard.\n0. Retour 00. Accueil")


def test_back_office_down_when_creating(stoppable):
    p, stop_backoffice = stoppable
    p.dial()
    p.answer("6")
    p.answer("1")                                          # deferral
    p.answer("1")                                          # confirm
    p.answer("5500")                                       # the last bill: proof for a first PIN
    p.answer(PIN)
    stop_backoffice()
    assert p.answer(PIN) == ("CON Nos systèmes sont indisponibles: votre demande n'est pas confirmée. "
                             "Merci de réessayer plus tard.\n0. Retour 00. Accueil")


# ---------------------------------------------------------------- rules and schedule, without HTTP
def test_the_shipped_rules_load_once_and_invalid_rules_are_refused(tmp_path):
    from decimal import Decimal

    from dialogs.arrangements import load_rules
    from dialogs.tariffs import ConfigError

    rules = load_rules("config/arrangements.yaml")
    assert (rules.min_balance, rules.cooldown_months, rules.max_months, rules.deferral_months) == (
        Decimal(5000), 6, 6, 1)
    assert rules.eligible_account_kinds == ("postpaid",)
    assert load_rules("config/arrangements.yaml") is rules
    broken = tmp_path / "arrangements.yaml"
    broken.write_text("min_balance: '5000'\ncooldown_months: 6\nmax_months: 12\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_months"):
        load_rules(str(broken))


def test_the_schedule_splits_the_balance_with_the_remainder_first():
    from decimal import Decimal

    from dialogs.arrangements import schedule, split

    assert split(Decimal(12500), 3) == [Decimal(4168), Decimal(4166), Decimal(4166)]
    assert sum(split(Decimal(185200), 6)) == Decimal(185200)
    assert schedule("deferral", 1, Decimal(12500), date(2026, 1, 31)) == [(date(2026, 2, 28), Decimal(12500))]
    assert [d for d, _ in schedule("instalments", 3, Decimal(900), date(2026, 11, 30))] == [
        date(2026, 12, 30), date(2027, 1, 30), date(2027, 2, 28)]
