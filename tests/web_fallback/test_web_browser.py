"""The web fallback in a real headless Chromium (Playwright): a customer signs in with the code the
fake SMS provider caught, checks the balance, pages the bills, pays with a PIN, reports an outage
and signs out, pressing the buttons a person would press."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

PIN = "2468"


def sign_in(page: Page, url: str, number: str, sms_code: Callable[[str], str]) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    page.get_by_label("Votre numéro de téléphone").fill(number)
    page.get_by_role("button", name="Recevoir un code par SMS").click()
    expect(page.get_by_role("heading", name="Entrez le code reçu par SMS")).to_be_visible()
    page.get_by_label("Code à 6 chiffres").fill(sms_code("+221" + number.replace(" ", "")[-9:]))
    page.get_by_role("button", name="Se connecter").click()


def screen(page: Page) -> str:
    """The screen's text as the customer reads it, one line per paragraph."""
    text = page.locator("#screen-text").inner_text()
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def press(page: Page, label: str) -> None:
    page.get_by_role("button", name=label).click()


def test_balance_and_the_bills_paged_then_sign_out(page: Page, served_web: str, sms_code):
    sign_in(page, served_web, "77 000 00 01", sms_code)
    assert screen(page) == "ElecNet - 1000001"
    expect(page.get_by_text("Connecté : +2217*****001")).to_be_visible()
    press(page, "1. Solde et factures")
    assert screen(page) == "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2"
    press(page, "1. Dernières factures")
    assert screen(page) == "Factures (choisissez):"
    expect(page.get_by_text("Page 1 sur 2")).to_be_visible()
    expect(page.get_by_role("button", name="10. février 2026 7 400 FCFA payée")).to_be_visible()
    expect(page.get_by_role("button", name="11. janvier 2026")).to_have_count(0)
    press(page, "Suite")
    expect(page.get_by_text("Page 2 sur 2")).to_be_visible()
    assert screen(page) == "Factures (choisissez):"          # the list keeps its heading on every page
    expect(page.get_by_role("button", name="12. décembre 2025 6 200 FCFA payée")).to_be_visible()
    press(page, "Préc.")
    expect(page.get_by_text("Page 1 sur 2")).to_be_visible()
    press(page, "Retour")
    assert screen(page).startswith("Compte 1000001")
    page.reload()                                   # a reload shows the same screen, sends nothing
    assert screen(page).startswith("Compte 1000001")
    press(page, "Se déconnecter")
    expect(page.get_by_text("Vous êtes déconnecté.")).to_be_visible()
    page.go_back()                                  # no page of the account comes back from the cache
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    assert "12 500" not in page.content()


def test_pay_the_bill_with_a_pin_never_shown(page: Page, served_web: str, sms_code):
    sign_in(page, served_web, "+221770000001", sms_code)
    press(page, "3. Payer")
    press(page, "1. Payer tout le solde")
    press(page, "1. Orange Money")
    assert screen(page) == "Payer 12 500 FCFA sur le compte 1000001 avec Orange Money ?"
    press(page, "1. Confirmer")
    assert screen(page).startswith("Premier usage. Pour vérifier, entrez le montant de la dernière facture")
    page.get_by_label("Votre réponse").fill("5500")
    press(page, "Valider")
    assert screen(page) == "Premier usage: choisissez un code PIN secret (4 chiffres):"
    field = page.get_by_label("Code secret (il ne sera pas affiché)")
    assert field.get_attribute("type") == "password"
    field.fill(PIN)
    press(page, "Valider")
    assert screen(page) == "Confirmez votre code PIN:"
    assert page.get_by_label("Code secret (il ne sera pas affiché)").input_value() == ""   # never filled back
    page.get_by_label("Code secret (il ne sera pas affiché)").fill(PIN)
    press(page, "Valider")
    assert re.fullmatch(r"Validez le paiement de 12 500 FCFA sur votre téléphone \(invite mobile money\)\. "
                        r"Vous recevrez une confirmation par SMS\. Réf\. PAY-[0-9A-F]{16}", screen(page))
    assert PIN not in page.content()
    press(page, "Retour au menu")
    assert screen(page) == "ElecNet - 1000001"


def test_report_an_outage(page: Page, served_web: str, sms_code):
    sign_in(page, served_web, "+221770000001", sms_code)
    press(page, "4. Panne/réclamation")
    press(page, "1. Signaler une panne")
    assert screen(page) == "Signaler une panne de courant\nCompte 1000001, zone DKR-MEDINA"
    press(page, "1. Confirmer")
    assert re.fullmatch(r"Panne signalée\. Référence: (INC-[A-Z0-9]+)\nPour la suivre: menu 5, ou envoyez SUIVI \1 "
                        r"par SMS\.", screen(page))
    press(page, "Accueil")
    assert screen(page) == "ElecNet - 1000001"


def test_a_wrong_answer_is_asked_again_with_the_reason_in_english(page: Page, served_web: str, sms_code):
    sign_in(page, served_web, "+221770000002", sms_code)      # a business customer who reads English
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert screen(page) == "Choose an account:"
    press(page, "1. 2000001")
    assert screen(page) == "ElecNet - 2000001"
    press(page, "3. Pay")
    press(page, "2. Pay another amount")
    page.get_by_label("Your answer").fill("50.5")
    press(page, "Send")
    expect(page.get_by_role("alert")).to_have_text("Amount from 100 to 2,000,000 FCFA, whole numbers only.")
    assert page.get_by_label("Your answer").input_value() == ""
    page.get_by_label("Your answer").fill("1500")
    press(page, "Send")
    assert screen(page) == "Pay 1,500 FCFA with:"
    press(page, "Sign out")
    expect(page.get_by_text("You are signed out.")).to_be_visible()


def test_each_screen_is_announced_by_its_title_as_the_page_heading(page: Page, served_web: str, sms_code):
    # A screen reader lists a page's headings and reads the tab's title first: both name the screen.
    sign_in(page, served_web, "77 000 00 01", sms_code)
    expect(page.get_by_role("heading", level=1)).to_have_text("ElecNet - 1000001")
    expect(page).to_have_title("ElecNet - 1000001 · ElecNet - Espace client")
    press(page, "1. Solde et factures")
    expect(page.get_by_role("heading", level=1)).to_have_text("Compte 1000001")
    expect(page).to_have_title("Compte 1000001 · ElecNet - Espace client")
    assert screen(page) == "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2"


def test_a_keyboard_user_signs_in_typing_only_the_number_and_the_code(page: Page, served_web: str, sms_code):
    # No mouse: the code page puts the cursor in the code field, so the code is typed straight in.
    page.goto(served_web)
    page.keyboard.press("Tab")                                   # the language link first
    page.keyboard.press("Tab")
    expect(page.get_by_label("Votre numéro de téléphone")).to_be_focused()
    page.keyboard.type("77 000 00 01")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Code à 6 chiffres")).to_be_focused()
    page.keyboard.type(sms_code("+221770000001"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("ElecNet - 1000001")
