"""Transcripts of navigation that never traps: paging after an error, Back without loops or into a
committed step, one main menu on every path, stable option numbers, shortcuts and hidden options."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import update

from backoffice.models import Bill

HOME_FR = ("CON ElecNet - 1000001\n1. Solde et factures\n2. Consommation\n3. Payer\n4. Panne/réclamation\n"
           "5. Suivi demande\n6. Délai de paiement\n7. Simulateur\n8. Préférences")
NAV_FR = "0. Retour 00. Accueil"


PROOF_EN = "CON First use. To check, enter the amount of the last bill of account 2000001 (FCFA):\n0. Back 00. Home"


def _home_en(account: str) -> str:
    return (f"CON ElecNet - {account}\n1. Balance and bills\n2. Consumption\n3. Pay\n4. Outage/complaint\n"
            "5. Track a request\n6. Payment plan\n7. Bill simulator\n8. Preferences\n9. Other account")


# ---------------------------------------------------------------- paging
def test_an_error_reask_that_needs_two_pages_pages_with_98_and_99_without_counting_errors(phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("7")
    assert p.answer("2").endswith(f"7. Ordinateur 60W\n{NAV_FR}")       # fits one page
    first = p.answer("x")                                                # the error line pushes it to two
    assert first.startswith("CON Choix invalide.\nAppareil:\n1. Frigo 150W\n")
    assert first.endswith(f"{NAV_FR}\n98. Suite")
    second = p.answer("98")
    assert second == f"CON 6. Climatiseur 1500W\n7. Ordinateur 60W\n{NAV_FR}\n99. Préc."
    assert p.answer("99") == first
    assert p.answer("98") == second
    # Three paging keys after one error, and the customer is still there: paging is never an error.
    assert p.answer("6") == f"CON Climatiseur: heures d'utilisation par jour (ex: 4):\n{NAV_FR}"


def test_98_past_the_last_page_and_99_before_the_first_stay_put(phone):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")
    p.answer("1")
    first = p.answer("1")                   # twelve bills: a list on several pages
    assert first.startswith("CON Bills (choose one):\n1. ") and first.endswith("98. More")
    assert p.answer("99") == first          # before the first page: stays on the first
    pages = [first]
    while (page := p.answer("98")) != pages[-1]:
        pages.append(page)
    assert len(pages) >= 3 and "99. Prev." in pages[-1] and "98. More" not in pages[-1]
    assert p.answer("98") == pages[-1]      # past the last page: stays on the last
    assert p.answer("99") == pages[-2]      # and one 99 goes back one page from there
    wrong = p.answer("x")                   # an error re-ask of a paged list pages as well
    assert wrong.startswith("CON Invalid choice.\nBills (choose one):\n1. ")
    assert p.answer("98").startswith("CON ") and p.answer("99") == wrong
    assert p.answer("1").startswith("CON Bill ")


def test_98_and_99_on_a_one_page_error_reask_stay_without_a_new_error(phone):
    p = phone("+221770000001")
    p.dial("8", "2")                        # *123*8*2#: Preferences, SMS alerts
    first = p.answer("7")
    assert first.startswith("CON Choix invalide.\nAlertes")
    assert p.answer("98") == first
    assert p.answer("99") == first
    assert p.answer("98") == first
    assert p.answer("1").startswith("CON Alertes par SMS (choisissez pour changer):\n1. Panne dans ma zone: oui")


def test_the_issue_hops_on_the_business_main_menu_never_end_the_session(phone):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")
    wrong = p.answer("x")                   # text=1*x: with the error line the menu needs two pages
    assert wrong.startswith("CON Invalid choice.\nElecNet - 2000001\n1. Balance and bills") and wrong.endswith(
        "\n98. More")
    second = p.answer("98")                 # text=1*x*98: the next page, not an error
    assert "9. Other account" in second and second.endswith("99. Prev.")
    assert p.answer("99") == wrong
    assert p.answer("98") == second
    assert p.answer("2").startswith("CON Reading ")


# ---------------------------------------------------------------- Back
def test_back_from_a_screen_that_returns_to_itself_goes_where_the_customer_came_from(phone):
    p = phone("+221770000001")
    p.dial()
    preferences = p.answer("8")
    p.answer("2")
    p.answer("1")
    p.answer("2")
    assert p.answer("0") == preferences
    assert p.answer("0") == HOME_FR


def test_back_from_a_bill_picked_on_page_4_returns_to_page_4_of_the_bills(phone):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")
    account = p.answer("1")
    p.answer("1")                           # twelve bills on four pages
    for _ in range(3):
        fourth = p.answer("98")
    assert fourth == "CON 12. December 2025 182,000 FCFA paid\n0. Back 00. Home\n99. Prev."
    assert p.answer("12").startswith("CON Bill December 2025\nAmount: 182,000 FCFA\n")
    assert p.answer("0") == fourth          # where the customer picked it, not the first page
    assert p.answer("99").startswith("CON 8. April 2026 ")
    assert p.answer("0") == account


def test_back_after_a_filed_complaint_never_returns_to_its_confirmation(phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("4")
    p.answer("2")
    p.answer("2")                           # meter problem
    assert p.answer("1").startswith("CON Réclamation: Problème de compteur")   # no description
    assert p.answer("1").startswith("CON Réclamation enregistrée. Référence: REC-")
    assert p.answer("0") == HOME_FR


def test_home_after_a_filed_complaint_is_the_main_menu(phone):
    p = phone("+221770000001")
    p.dial()
    for key in ("4", "2", "2", "1"):
        p.answer(key)
    assert p.answer("1").startswith("CON Réclamation enregistrée. Référence: REC-")
    assert p.answer("00") == HOME_FR
    assert p.answer("4").startswith("CON Panne ou réclamation:")


# ---------------------------------------------------------------- one main menu
def test_the_main_menu_is_the_same_on_every_path(phone):
    p = phone("+221770000001")
    assert p.dial() == HOME_FR
    p.answer("1")
    assert p.answer("0") == HOME_FR
    p.answer("8")
    assert p.answer("00") == HOME_FR
    p.answer("8")
    p.answer("1")
    p.answer("1")
    assert p.answer("1") == HOME_FR       # "1. Menu principal" after saving the language
    assert p.answer("0") == HOME_FR       # Back and Home on the root stay there, no error
    assert p.answer("00") == HOME_FR
    assert p.answer("0") == HOME_FR
    assert p.answer("1").startswith("CON Compte 1000001")


# ---------------------------------------------------------------- option numbers
def test_the_last_payments_option_keeps_its_number_when_nothing_is_due(phone, backoffice_app: Flask):
    with backoffice_app.extensions["backoffice"].sessions() as db:
        db.execute(update(Bill).where(Bill.account_number == "1000001").values(paid_amount=Bill.amount))
        db.commit()
    p = phone("+221770000001")
    p.dial()
    nothing_due = p.answer("3")
    assert nothing_due.startswith("CON Compte 1000001: rien à payer")
    assert "\n3. Derniers paiements\n" in nothing_due
    last_payments = p.answer("3")
    assert last_payments == f"CON Aucun paiement au compte 1000001 fait depuis ce numéro pour le moment.\n{NAV_FR}"
    learned = phone("+221770000001")
    assert learned.dial("3", "3") == last_payments


def test_alert_toggles_keep_their_numbers(phone):
    p = phone("+221770000001")
    assert p.dial("8", "2").startswith("CON Alertes par SMS (choisissez pour changer):\n1. Panne dans ma zone: non\n")
    on = p.answer("2")
    assert "\n1. Panne dans ma zone: non\n2. Facture émise: oui\n3. Paiement d'un autre numéro: non\n" in on


# ---------------------------------------------------------------- shortcuts
def test_a_shortcut_follows_after_the_account_is_chosen(phone):
    p = phone("+221770000002")
    assert p.dial("1").startswith("CON Choose an account:\n1. 2000001 DKR-PLATEAU")
    assert p.answer("2").startswith("CON Account 2000002\nBalance due:")
    assert p.answer("0") == _home_en("2000002")


def test_a_hidden_option_is_not_reachable_by_its_number_or_a_shortcut(phone):
    single = phone("+221770000001")
    assert single.dial("9") == "CON Choix invalide.\n" + HOME_FR[4:]
    typed = phone("+221770000001")
    typed.dial()
    assert typed.answer("9") == "CON Choix invalide.\n" + HOME_FR[4:]


def test_the_account_shortcut_for_several_accounts_goes_through_the_pin(phone):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")
    assert p.answer("9") == PROOF_EN
    quick = phone("+221770000002")
    assert quick.dial("9").startswith("CON Choose an account:")
    assert quick.answer("1") == PROOF_EN


# ---------------------------------------------------------------- PIN gate for another account
def test_back_from_the_main_menu_never_reopens_the_account_list(phone):
    p = phone("+221770000002")
    p.dial()
    home = p.answer("1")
    assert home == _home_en("2000001")
    assert p.answer("0") == home
    assert p.answer("00") == home
    assert p.answer("9") == PROOF_EN
    assert p.answer("185200") == "CON First use: choose a secret PIN (4 digits):\n0. Back 00. Home"
    p.answer("4821")
    assert p.answer("4821").startswith("CON Choose an account:")
    assert p.answer("2") == _home_en("2000002")
    assert p.answer("0") == _home_en("2000002")
