"""The web fallback's security rules through the Flask client: CSRF on every POST, the cookie's flags,
the headers of every page, a session that belongs to its number, and hostile requests answered with
a short HTML page in the visitor's language, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from flask import Flask
from itsdangerous import URLSafeTimedSerializer

from app.factory import create_app
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking

from .test_web_sign_in import HOME_FR, SIGN_IN_FR
from .web_visitor import WebVisitor, visible_text

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")


def test_every_post_without_the_visits_csrf_token_is_refused(
        signed_in: Callable[[str], WebVisitor], visitor: Callable[[], WebVisitor],
        provider: FakeAfricasTalking) -> None:
    browser: WebVisitor = signed_in("+221770000001")
    hop = browser.field("hop")
    for path, fields in (("/web/", {"choice": "1", "hop": hop}), ("/web/sign-out", {}),
                         ("/web/code", {"phone": "+221770000002"})):
        missing = browser.client.post(path, data=fields)
        forged = browser.client.post(path, data={**fields, "csrf": "not-the-token"})
        for response in (missing, forged):
            assert response.status_code == 403
            assert response.mimetype == "text/html"
            assert ("Ce formulaire a expiré ou ne vient pas de ce site. Revenez à l'accueil et réessayez."
                    in visible_text(response.get_data(as_text=True)))
    # Nothing of it happened: still signed in on the main menu, no code sent to the other number.
    assert browser.open() == HOME_FR
    assert provider.messages_to("+221770000002") == []
    # Another visit's token is not this one's.
    other = visitor()
    other.open()
    response = browser.client.post("/web/", data={"choice": "1", "hop": hop, "csrf": other.field("csrf")})
    assert response.status_code == 403


def test_the_cookie_is_signed_httponly_samesite_and_scoped_to_the_web_pages(
        visitor: Callable[[], WebVisitor], web_settings: Settings) -> None:
    browser: WebVisitor = visitor()
    browser.open()
    assert browser.response is not None
    cookie = browser.response.headers["Set-Cookie"]
    assert cookie.startswith("web_visit=")
    assert {"HttpOnly", "SameSite=Lax", "Path=/web"} <= {part.strip() for part in cookie.split(";")}
    assert "Secure" not in cookie                     # served over plain HTTP here ...
    secure_app = create_app(replace(web_settings, public_base_url="https://customers.example"))
    secure = secure_app.test_client().get("/web/", base_url="https://customers.example")
    assert "Secure" in [part.strip() for part in secure.headers["Set-Cookie"].split(";")]   # ... not over HTTPS
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_pages_forbid_scripts_framing_and_caching(signed_in: Callable[[str], WebVisitor]) -> None:
    browser: WebVisitor = signed_in("+221770000001")
    browser.choose("Solde")
    assert browser.response is not None
    headers = browser.response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"       # the balance is on this page
    assert "<script" not in browser.html and " style=" not in browser.html
    sheet = browser.client.get("/web/static/web.css")
    assert sheet.status_code == 200 and sheet.mimetype == "text/css"
    assert sheet.headers.get("Cache-Control") != "no-store"


def test_a_session_belongs_to_the_signed_in_number(signed_in: Callable[[str], WebVisitor],
                                                   web_app: Flask) -> None:
    first: WebVisitor = signed_in("+221770000001")
    first.choose("Solde")
    assert first.page().startswith("Compte 1000001\nÀ payer: 12 500 FCFA")
    second: WebVisitor = signed_in("+221770000002")
    assert "1000001" not in second.page() and "12 500" not in second.page()
    # A cookie forged with the server's key, claiming the first number with the second's visit: the
    # server holds no such visit open for that number, so it is a signed-out visitor.
    serializer = URLSafeTimedSerializer("test-web-secret", salt="web_fallback.customer.visit")
    cookie = second.client.get_cookie("web_visit", path="/web")
    assert cookie is not None
    claim = serializer.loads(cookie.value)
    forged = WebVisitor(web_app.test_client())
    forged.client.set_cookie("web_visit", serializer.dumps({**claim, "m": "+221770000001"}), path="/web")
    assert "Vous êtes déconnecté." in forged.open()
    assert "12 500" not in forged.page()
    # A cookie changed without the key is no cookie at all.
    tampered = WebVisitor(web_app.test_client())
    tampered.client.set_cookie("web_visit", cookie.value[:-3] + "abc", path="/web")
    assert tampered.open() == SIGN_IN_FR


def test_a_double_submitted_form_is_one_hop(signed_in: Callable[[str], WebVisitor]) -> None:
    browser: WebVisitor = signed_in("+221770000001")
    hop, csrf = browser.field("hop"), browser.field("csrf")
    for _ in range(2):      # a double click on "1. Solde et factures": the second is the same hop
        browser.client.post("/web/", data={"choice": "1", "hop": hop, "csrf": csrf})
    assert browser.open().startswith("Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n"
                                     "1. Dernières factures")


@pytest.mark.parametrize(("method", "path", "data", "status", "message"), [
    ("post", "/web/", {"choice": "1" * 201}, 400, "Nous n'avons pas pu lire votre demande."),
    ("post", "/web/", {"choice": "1", "hop": "short"}, 400, "Nous n'avons pas pu lire votre demande."),
    ("post", "/web/", {"hop": "h" * 24}, 400, "Nous n'avons pas pu lire votre demande."),
    ("post", "/web/", {"answer": "x" * 20_000}, 413, "Votre demande est trop longue."),
    ("get", "/web/nowhere", None, 404, "Cette page n'existe pas."),
    ("put", "/web/", {}, 405, "Cette page ne s'utilise pas ainsi."),
    ("post", "/web/sign-in", {"code": "1" * 5000}, 422, "Le code est fait de 6 chiffres."),
])
def test_hostile_requests_get_a_clear_page_never_a_500(
        signed_in: Callable[[str], WebVisitor], visitor: Callable[[], WebVisitor], method: str, path: str,
        data: dict[str, str] | None, status: int, message: str) -> None:
    browser: WebVisitor = signed_in("+221770000001") if path == "/web/" else visitor()
    browser.open()
    if path == "/web/sign-in":
        browser.ask_code("+221770000003")
    fields = None if data is None else {"hop": browser.field("hop") if "hop" in browser.html else "",
                                        **data, "csrf": browser.field("csrf")}
    response = getattr(browser.client, method)(path, data=fields)
    body = response.get_data(as_text=True)
    assert response.status_code == status, body
    assert response.mimetype == "text/html"
    assert message in visible_text(body)
    assert "Service client : 800 00 00" in body
    assert "Traceback" not in body
    assert response.headers["Content-Security-Policy"] == CSP


def test_pages_speak_the_visitors_language(visitor):
    english = visitor()
    english.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    page = english.open()
    assert page.startswith("Sign in\nYour electricity account without USSD")
    assert english.ask_code("123") .count("This number is not valid. Example: 77 000 00 01.") == 1
    assert "Not found" not in english.open("/web/nowhere") and "This page does not exist." in english.page()
    french = visitor()
    french.open("/web/?lang=fr")
    assert french.page() == SIGN_IN_FR
    assert "Français" not in french.page()
    assert french.open("/web/?lang=en").startswith("Sign in")
    assert french.open().startswith("Sign in")       # the choice is kept for the visit


def redis_contents(client) -> bytes:
    """Every key and value of this run's Redis database, read as its type (DUMP may compress)."""
    found = []
    for key in client.keys("*"):
        kind = client.type(key)
        value = {b"string": lambda k: [client.get(k)], b"hash": lambda k: [*client.hgetall(k).items()],
                 b"list": lambda k: client.lrange(k, 0, -1), b"set": lambda k: client.smembers(k),
                 b"zset": lambda k: client.zrange(k, 0, -1)}.get(kind, lambda k: [])(key)
        found.append(key + repr(value).encode())
    return b"".join(found)


def test_a_pin_typed_on_the_web_is_kept_nowhere(signed_in: Callable[[str], WebVisitor], redis_url: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import redis

    caplog.set_level(logging.DEBUG)
    browser: WebVisitor = signed_in("+221770000001")
    for label in ("Payer", "Payer tout le solde", "Orange Money", "Confirmer"):
        browser.choose(label)
    browser.answer("5500")
    browser.answer("7391")
    assert browser.page().startswith("Confirmez votre code PIN:")
    assert "7391" not in browser.html                 # not filled back into the page
    browser.answer("7391")
    assert browser.page().startswith("Validez le paiement de 12 500 FCFA")
    contents = redis_contents(redis.Redis.from_url(redis_url))
    assert b"web:+221770000001" in contents and b"1000001" in contents    # the web session is there ...
    assert b"7391" not in contents                    # ... without the PIN (nor its replay record, nor codes)
    assert "7391" not in caplog.text and "770000001" not in caplog.text


def test_a_mistyped_address_says_the_page_is_not_found_rather_than_refused(visitor):
    french = visitor()
    assert french.open("/web/nowhere").startswith("Page introuvable\nCette page n'existe pas.")
    english = visitor()
    english.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    assert english.open("/web/nowhere").startswith("Page not found\nThis page does not exist.")
