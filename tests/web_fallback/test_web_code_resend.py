"""The web page of a code screen offers "Renvoyer le code" beside the field: a prepaid customer signed in
on the web, choosing a first PIN, asks for the SMS code again, reads where the new one went, and the new
code (the old one void) lets them choose the PIN."""

from __future__ import annotations

from flask import Flask

from .web_visitor import WebVisitor


def test_a_first_pin_code_is_sent_again_from_its_button_and_the_new_one_works(signed_in, web_app: Flask):
    deps = web_app.extensions["parts"]["deps"]
    browser: WebVisitor = signed_in("+221770000003")
    browser.press("8")
    page = browser.press("3")
    assert "Premier usage. Un code de 6 chiffres vous a été envoyé par SMS." in page
    assert "1. Renvoyer le code" in page and 'name="answer"' in browser.html
    page = browser.choose("Renvoyer le code")
    assert "Nouveau code envoyé par SMS au +2217*****003, l'ancien ne marche plus." in page, page
    first, second = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "pin_code"]
    if first != second:
        assert "Code incorrect. Essais restants: 2." in browser.answer(first)
    assert "Premier usage: choisissez un code PIN secret (4 chiffres):" in browser.answer(second)


def test_an_email_code_given_up_offers_a_new_code_button_and_the_new_one_confirms(signed_in, web_app: Flask):
    deps = web_app.extensions["parts"]["deps"]
    browser: WebVisitor = signed_in("+221770000001")
    browser.press("8")
    browser.press("6")
    browser.press("4")
    assert "Un code a été envoyé à a***@exemple.sn." in browser.answer("awa@exemple.sn")
    [first] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "email_code"]
    wrong = [c for c in ("000000", "111111", "222222", "333333") if c != first]
    browser.answer(wrong[0])
    browser.answer(wrong[1])
    page = browser.answer(wrong[2])
    assert "Code expiré ou trop d'erreurs. Pour recevoir un nouveau code:" in page and "1. Nouveau code" in page
    assert "Nouveau code envoyé à a***@exemple.sn, l'ancien ne marche plus." in browser.choose("Nouveau code")
    [_, second] = [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == "email_code"]
    assert "Adresse e-mail confirmée: a***@exemple.sn." in browser.answer(second)
