"""Signing in on the web fallback, read as a visitor sees it: the number, the code the fake SMS provider
caught, then the main menu; the same answer for any number; codes that die; throttling; sign-out."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask

from app.factory import build_dispatcher
from tests.support.fake_africastalking import FakeAfricasTalking

from .web_visitor import WebVisitor

SIGN_IN_FR = ("Connexion\nVotre compte d'électricité, sans USSD : solde, factures, paiement, pannes.\n"
              "Votre numéro de téléphone\nExemple : 77 000 00 01. Nous vous enverrons un code par SMS.\n"
              "[tel phone]\nRecevoir un code par SMS")


def sign_in_with(notice: str) -> str:
    first, rest = SIGN_IN_FR.split("\nVotre numéro", 1)
    return f"{first}\n{notice}\nVotre numéro{rest}"


HOME_FR = ("ElecNet - 1000001\n1. Solde et factures\n2. Consommation\n3. Payer\n4. Panne/réclamation\n"
           "5. Suivi demande\n6. Délai de paiement\n7. Simulateur\n8. Préférences")


def code_page(masked: str) -> str:
    return ("Entrez le code reçu par SMS\nSi ce numéro peut recevoir des SMS, un code à 6 chiffres vient d'y "
            f"être envoyé. Il est valable 5 minutes. ({masked})\nCode à 6 chiffres\n[text code]\nSe connecter\n"
            "Recevoir un nouveau code\nUtiliser un autre numéro")


def security_kinds(app: Flask, number: str) -> list[str]:
    """The security events of ``number``, oldest first."""
    audit = app.extensions["parts"]["security"]
    return [event.kind for event in reversed(audit.for_subject(number))]


def test_a_customer_signs_in_with_the_code_received_by_sms(visitor, sms_code, provider: FakeAfricasTalking,
                                                          web_app, redis_url):
    browser: WebVisitor = visitor()
    assert browser.open() == SIGN_IN_FR
    assert browser.ask_code("77 000 00 01") == code_page("+2217*****001")
    code = sms_code("+221770000001")
    assert provider.messages_to("+221770000001") == [
        f"ElecNet: votre code de connexion au site est {code}. Valable 5 minutes. Ne le donnez à personne."]
    # The server keeps a salted hash of the code, never the code itself.
    kept = redis.Redis.from_url(redis_url).hgetall("web:code:+221770000001")
    values = [v if isinstance(v, bytes) else v.encode() for v in kept.values()]
    assert kept and code.encode() not in b"".join(values)
    assert browser.sign_in(code) == HOME_FR
    assert security_kinds(web_app, "+221770000001") == ["code_sent", "sign_in"]


def test_known_and_unknown_numbers_get_the_same_answer(visitor, sms_code):
    known, unknown = visitor(), visitor()
    known.open(), unknown.open()
    assert known.ask_code("+221770000001") == code_page("+2217*****001")
    assert unknown.ask_code("+221770009999") == code_page("+2217*****999")
    assert known.status == unknown.status == 200
    # Whoever holds the number can go on, as when dialling: an unknown number is offered to link an account.
    unknown.sign_in(sms_code("+221770009999"))
    assert "numéro de compte" in unknown.page().lower() or "compte" in unknown.page()


def test_a_wrong_code_is_refused_and_three_wrong_codes_kill_it(visitor, sms_code, web_app):
    browser = visitor()
    browser.open()
    browser.ask_code("+221770000001")
    code = sms_code("+221770000001")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert "Code incorrect. Vérifiez le SMS et réessayez." in browser.sign_in(wrong)
    assert browser.status == 422
    assert "Le code est fait de 6 chiffres." in browser.sign_in("12ab")
    browser.sign_in(wrong)
    assert "Ce code n'est plus valable. Demandez-en un nouveau." in browser.sign_in(wrong)
    assert "Ce code n'est plus valable." in browser.sign_in(code)     # even the right one, now
    assert "Recevoir un nouveau code" in browser.page()
    browser.post("/web/code")                                        # a new code to the same number
    assert browser.sign_in(sms_code("+221770000001")) == HOME_FR
    assert "sign_in_refused" in security_kinds(web_app, "+221770000001")


def test_a_number_that_is_not_one_is_asked_again(visitor, provider):
    browser = visitor()
    browser.open()
    assert "Ce numéro n'est pas valide. Exemple : 77 000 00 01." in browser.ask_code("12")
    assert browser.status == 422
    browser.ask_code("7" * 40)
    assert browser.status == 422
    assert "[tel phone]" in browser.page()
    assert provider.sent == []


@pytest.mark.parametrize("number", ["+33612345678", "0033612345678", "+2250707070707"])
def test_no_code_goes_abroad(visitor, provider, web_app, web_settings, number):
    # An SMS abroad is paid by the utility and is what SMS-pumping fraud lives on: the country's numbers only.
    browser = visitor()
    browser.open()
    assert "Le code ne s'envoie qu'aux numéros de notre pays. Exemple : 77 000 00 01." in browser.ask_code(number)
    assert browser.status == 422
    build_dispatcher(web_settings, web_app.extensions["parts"]["db"]).run_once()
    assert provider.sent == []
    assert browser.ask_code("77 000 00 01") == code_page("+2217*****001")    # a number of the country: it goes


def test_code_requests_are_throttled_per_number_whatever_the_address(visitor, provider, sms_code, web_app):
    statuses = []
    for n in range(4):
        browser = visitor(f"10.0.0.{n + 1}")
        browser.open()
        browser.ask_code("+221770000001")
        statuses.append(browser.status)
    assert statuses == [200, 200, 200, 429]
    assert "Trop d'essais. Réessayez dans quelques minutes." in browser.page()
    sms_code("+221770000001")
    assert len(provider.messages_to("+221770000001")) == 3
    assert "sign_in_throttled" in security_kinds(web_app, "+221770000001")


def test_code_requests_are_throttled_per_address_whatever_the_number(visitor):
    browser = visitor("10.0.0.9")
    browser.open()
    statuses = []
    for n in range(11):
        browser.ask_code(f"+2217700001{n:02d}")
        statuses.append(browser.status)
        if browser.status == 200:
            browser.post("/web/other-number")
    assert statuses == [200] * 10 + [429]


def test_codes_typed_are_throttled_per_number(visitor, sms_code):
    browser = visitor()
    browser.open()
    browser.ask_code("+221770000001")
    code = sms_code("+221770000001")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    statuses = []
    for _ in range(11):
        browser.sign_in(wrong)
        statuses.append(browser.status)
    assert statuses == [422] * 10 + [429]
    assert "Trop d'essais." in browser.page()


def test_sign_out_ends_the_visit_even_for_a_copy_of_its_cookie(signed_in: Callable[[str], WebVisitor],
                                                               web_app: Flask) -> None:
    browser: WebVisitor = signed_in("+221770000001")
    copy = WebVisitor(web_app.test_client())
    cookie = browser.client.get_cookie("web_visit", path="/web")
    assert cookie is not None
    copy.client.set_cookie("web_visit", cookie.value, path="/web")
    assert copy.open() == HOME_FR                   # a copied cookie works while the visit is open ...
    assert browser.sign_out() == sign_in_with("Vous êtes déconnecté.")
    assert copy.open() == sign_in_with("Vous êtes déconnecté.")   # ... and no longer once it is closed
    assert "sign_out" in security_kinds(web_app, "+221770000001")


def test_a_visit_idle_too_long_is_signed_out(settings, provider, sms_code, web_settings):
    import time
    from dataclasses import replace

    from app.factory import create_app

    app = create_app(replace(web_settings, web_idle_seconds=1))
    browser = WebVisitor(app.test_client())
    browser.open()
    browser.ask_code("+221770000001")
    browser.sign_in(sms_code("+221770000001"))
    assert browser.page() == HOME_FR
    time.sleep(2.2)      # the cookie's signature is dated in whole seconds
    assert browser.open() == sign_in_with("Vous avez été déconnecté après une période d'inactivité. "
                                          "Reconnectez-vous.")
