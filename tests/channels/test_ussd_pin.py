"""Transcripts of the PIN: a first PIN needs the last bill, weak PINs refused, locks announced before the
PIN is asked and growing, a forgotten PIN reset, the customer told by SMS, an agent's unlock.

The growing locks are timed on ``product_clock``, moved by each lock's length from just before a
year's end, never by waiting or by editing the stored lock."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from app.__main__ import main as app_main

NAV = "0. Retour 00. Accueil"
ON_NEW_YEARS_EVE = pytest.mark.parametrize("product_clock", [datetime(2026, 12, 31, 23, 50, tzinfo=UTC)],
                                           ids=["dec-31st-23:50"], indirect=True)


@pytest.fixture
def deps(app):
    return app.extensions["parts"]["deps"]


def sms(deps, kind: str) -> list[dict]:
    return [e for e in deps.outbox.pending() if e["kind"] == kind]


def change_pin(phone, msisdn: str = "+221770000001"):
    """A new session opened on Preferences > Change my PIN: (the phone, the screen shown)."""
    p = phone(msisdn)
    p.dial()
    p.answer("8")
    return p, p.answer("3")


def lock(p, pins=("1357", "2468", "3579")) -> str:
    screen = ""
    for pin in pins:
        screen = p.answer(pin)
    return screen


def test_a_first_pin_is_not_set_without_the_amount_of_the_last_bill(phone, deps, caplog):
    caplog.set_level(logging.WARNING, logger="security")
    p, screen = change_pin(phone)
    assert screen == ("CON Premier usage. Pour vérifier, entrez le montant de la dernière facture du compte "
                      f"1000001 (FCFA):\n{NAV}")
    assert p.answer("7000") == f"CON Montant non reconnu.\n1. Réessayer\n2. Quitter\n{NAV}"
    assert not deps.pins.is_set("+221770000001")
    assert p.answer("1").startswith("CON Premier usage. Pour vérifier")
    assert p.answer("5500") == f"CON Premier usage: choisissez un code PIN secret (4 chiffres):\n{NAV}"
    p.answer("4821")
    assert p.answer("4821") == f"CON Nouveau code PIN (4 chiffres):\n{NAV}"
    assert deps.pins.is_set("+221770000001")
    [told] = sms(deps, "pin_set")
    assert (told["msisdn"], told["language"]) == ("+221770000001", "fr")
    assert "4821" not in str(told)
    assert "security event pin_set" in caplog.text
    assert "security event link_refused" in caplog.text        # the wrong amount
    assert "+221770000001" not in caplog.text and "4821" not in caplog.text


def test_a_prepaid_customer_proves_the_phone_with_a_code_by_sms_then_buys_credit(phone, deps, redis_url):
    import redis

    p = phone("+221770000003")                 # a prepaid meter: no bill can vouch for its holder
    p.dial("3")
    p.answer("1")                              # buy credit
    p.answer("2000")
    p.answer("2")                              # Wave
    assert p.answer("1") == ("CON Premier usage. Un code de 6 chiffres vous a été envoyé par SMS. "
                             f"Entrez-le (valable 3 min):\n1. Renvoyer le code\n{NAV}")
    [sent] = sms(deps, "pin_code")
    assert sent["msisdn"] == "+221770000003" and len(sent["payload"]["code"]) == 6
    wrong = "000000" if sent["payload"]["code"] != "000000" else "111111"
    assert p.answer(wrong) == f"CON Code incorrect. Essais restants: 2. Entrez le code envoyé par SMS:\n1. Renvoyer le code\n{NAV}"
    assert p.answer("1234567") == f"CON Le code a 6 chiffres.\nEntrez le code envoyé par SMS:\n1. Renvoyer le code\n{NAV}"
    assert p.answer(sent["payload"]["code"]) == f"CON Premier usage: choisissez un code PIN secret (4 chiffres):\n{NAV}"
    stored = redis.Redis.from_url(redis_url)
    assert all(sent["payload"]["code"].encode() not in (stored.get(k) or b"") for k in stored.keys("*"))
    p.answer("7395")
    assert p.answer("7395").startswith("END Validez l'achat de 2 000 FCFA")
    assert sms(deps, "pin_set")


def test_the_first_pin_proof_is_throttled_like_linking(phone, deps):
    for _ in range(2):
        p, _ = change_pin(phone)
        for guess in ("1000", "2000", "3000"):
            assert p.answer(guess).startswith("CON Montant non reconnu.")
            p.answer("1")
    p, _ = change_pin(phone)
    assert p.answer("5500").startswith("END Trop d'essais.")
    assert not deps.pins.is_set("+221770000001")


@pytest.mark.parametrize("weak", ["7777", "6789", "9876", "1987", "2024", "0001"])
def test_weak_pins_are_refused(phone, weak):
    p, _ = change_pin(phone)
    p.answer("5500")
    # 0001: the end of the phone number and of the account number alike.
    assert p.answer(weak) == f"CON Code trop simple. Choisissez un autre code PIN (4 chiffres):\n{NAV}"
    assert p.answer("4821") == f"CON Confirmez votre code PIN:\n{NAV}"


@ON_NEW_YEARS_EVE
def test_locks_grow_are_announced_before_the_pin_and_told_by_sms(phone, deps, caplog, product_clock):
    caplog.set_level(logging.WARNING, logger="security")
    deps.pins.set_pin("+221770000001", "4821")
    p, _ = change_pin(phone)
    assert lock(p) == "END Code PIN bloqué après 3 erreurs. Réessayez dans 15 minutes."
    product_clock.advance(minutes=15)                     # 00:05 on New Year's Day: the first lock is over
    q, screen = change_pin(phone)
    assert screen == "CON Entrez votre code PIN (4 chiffres):\n" + NAV
    assert lock(q) == "END Code PIN bloqué après 3 erreurs. Réessayez dans 1 heure."
    product_clock.advance(minutes=59, seconds=59)
    _, screen = change_pin(phone)
    assert screen == f"CON Code PIN bloqué après 3 erreurs. Réessayez dans 1 heure.\n1. Code PIN oublié\n{NAV}"
    product_clock.advance(seconds=1)                      # the hour is over
    _, screen = change_pin(phone)
    assert screen == "CON Entrez votre code PIN (4 chiffres):\n" + NAV
    assert [e["payload"]["lock"] for e in sms(deps, "pin_locked")] == ["lock_15m", "lock_1h"]
    assert caplog.text.count("security event pin_locked") == 2
    assert caplog.text.count("security event pin_failed") == 6


@ON_NEW_YEARS_EVE
def test_after_a_day_long_lock_only_an_agent_unlocks(phone, deps, settings, monkeypatch, capsys, product_clock):
    deps.pins.set_pin("+221770000001", "4821")
    screens = []
    for lasts in ({"minutes": 15}, {"hours": 1}, {"hours": 24}, {}):
        p, _ = change_pin(phone)
        screens.append(lock(p))
        product_clock.advance(**lasts)                    # to the end of the lock just set
    assert screens[2] == "END Code PIN bloqué après 3 erreurs. Réessayez dans 24 heures."
    assert screens[3] == "END Code PIN bloqué. Pour le débloquer, appelez le service client au 800 00 00."
    product_clock.advance(days=365)                      # no lock length runs out on its own now
    r = phone("+221770000001")
    r.dial()
    r.answer("8")
    # Said before the PIN is asked, with no self-service reset: only an agent lifts this one.
    assert r.answer("3") == "END Code PIN bloqué. Pour le débloquer, appelez le service client au 800 00 00."
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    assert app_main(["pin-unlock", "+221770000001"]) == 0
    assert "+221770000001" not in capsys.readouterr().out
    assert sms(deps, "pin_unlocked")
    s, screen = change_pin(phone)
    assert screen == "CON Entrez votre code PIN (4 chiffres):\n" + NAV
    assert s.answer("4821") == f"CON Nouveau code PIN (4 chiffres):\n{NAV}"
    assert app_main(["pin-unlock", "+221770000001"]) == 1     # nothing left to unlock


def test_a_forgotten_pin_is_reset_with_the_account_and_its_last_bill(phone, deps, caplog):
    caplog.set_level(logging.WARNING, logger="security")
    deps.pins.set_pin("+221770000001", "4821")
    p, _ = change_pin(phone)
    lock(p)
    q, screen = change_pin(phone)
    assert screen.startswith("CON Code PIN bloqué après 3 erreurs. Réessayez dans 15 minutes.")
    assert q.answer("1") == f"CON Code PIN oublié. Entrez votre numéro de compte (7 chiffres):\n{NAV}"
    assert q.answer("2000001") == f"CON Entrez le montant de la dernière facture de ce compte (FCFA):\n{NAV}"
    # Another customer's account, even with its right amount, answers as a wrong amount.
    assert q.answer("185200") == f"CON Compte ou montant non reconnu.\n1. Réessayer\n2. Quitter\n{NAV}"
    q.answer("1")
    q.answer("1000001")
    assert q.answer("5500") == f"CON Choisissez un nouveau code PIN (4 chiffres):\n{NAV}"
    assert q.answer("2014").startswith("CON Code trop simple.")      # the rules of a first PIN apply
    q.answer("5930")
    assert q.answer("5930") == f"CON Nouveau code PIN enregistré. Un SMS vous le confirme.\n1. Continuer\n{NAV}"
    assert sms(deps, "pin_reset")
    assert "security event pin_reset" in caplog.text and "security event pin_unlocked" in caplog.text
    r, _ = change_pin(phone)
    assert r.answer("5930") == f"CON Nouveau code PIN (4 chiffres):\n{NAV}"


def test_forgotten_pin_from_preferences_in_english_goes_home(phone, deps):
    deps.pins.set_pin("+221770000002", "4821")
    p = phone("+221770000002")
    p.dial()
    p.answer("3")
    p.answer("8")
    assert p.answer("4") == "CON Forgotten PIN. Enter your account number (7 digits):\n0. Back 00. Home"
    p.answer("2000003")
    p.answer("46100")
    p.answer("5930")
    p.answer("5930")
    assert p.answer("1").startswith("CON ElecNet - 2000003\n1. Balance and bills")
    q = phone("+221770000002")
    q.dial()
    q.answer("3")
    q.answer("8")
    q.answer("3")
    assert q.answer("5930") == "CON New PIN (4 digits):\n0. Back 00. Home"
