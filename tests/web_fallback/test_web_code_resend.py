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
