"""Transcripts of the preferences journey: language remembered, alerts, PIN change through the PIN gate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest


def test_language_switch_is_remembered_in_the_next_session(phone):
    p = phone("+221770000001")
    p.dial()
    assert p.answer("8") == ("CON Préférences:\n1. Langue / Language\n2. Alertes\n3. Changer mon code PIN\n"
                             "4. Code PIN oublié\n5. Numéros liés au compte\n6. Canal des messages\n0. Retour 00. Accueil")
    assert p.answer("1") == "CON Choisissez la langue:\n1. Francais\n2. English\n0. Retour 00. Accueil"
    assert p.answer("2") == "CON Language saved: English.\n1. Main menu\n0. Back 00. Home"
    assert p.answer("1").startswith("CON ElecNet - 1000001\n1. Balance and bills")
    again = phone("+221770000001")
    assert again.dial().startswith("CON ElecNet - 1000001\n1. Balance and bills")
    other = phone("+221770000003")
    assert other.dial().startswith("CON ElecNet - 3000001\n1. Solde et factures")


def test_alert_subscriptions_toggle_and_persist(app, phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("8")
    assert p.answer("2") == ("CON Alertes par SMS (choisissez pour changer):\n1. Panne dans ma zone: non\n"
                             "2. Facture émise: non\n3. Paiement d'un autre numéro: non\n0. Retour 00. Accueil")
    assert p.answer("1").startswith("CON Alertes par SMS (choisissez pour changer):\n1. Panne dans ma zone: oui\n")
    assert "3. Paiement d'un autre numéro: oui" in p.answer("3")
    subs = app.extensions["parts"]["deps"].subscriptions.for_user("+221770000001")
    assert {(s.topic, s.scope) for s in subs} == {("outage_zone", "DKR-MEDINA"), ("payment_received", "1000001")}
    assert "1. Panne dans ma zone: non" in p.answer("1")


def test_pin_change_sets_a_pin_on_first_use_after_the_last_bill_then_asks_for_it(phone):
    p = phone("+221770000001")
    p.dial()
    p.answer("8")
    assert p.answer("3") == ("CON Premier usage. Pour vérifier, entrez le montant de la dernière facture du compte "
                             "1000001 (FCFA):\n0. Retour 00. Accueil")
    assert p.answer("5500") == ("CON Premier usage: choisissez un code PIN secret (4 chiffres):\n"
                                "0. Retour 00. Accueil")
    assert p.answer("1234").startswith("CON Code trop simple.")
    assert p.answer("4821") == "CON Confirmez votre code PIN:\n0. Retour 00. Accueil"
    assert p.answer("4822").startswith("CON Les deux codes diffèrent.")
    p.answer("4821")
    assert p.answer("4821") == "CON Nouveau code PIN (4 chiffres):\n0. Retour 00. Accueil"
    assert p.answer("5930") == "CON Confirmez le nouveau code PIN:\n0. Retour 00. Accueil"
    assert p.answer("5930") == ("CON Votre code PIN a été changé.\n1. Menu principal\n"
                                "0. Retour 00. Accueil")
    second = phone("+221770000001")
    second.dial()
    second.answer("8")
    assert second.answer("3") == "CON Entrez votre code PIN (4 chiffres):\n0. Retour 00. Accueil"
    assert second.answer("4821").startswith("CON Code PIN incorrect. Essais restants: 2.")
    assert second.answer("5930") == "CON Nouveau code PIN (4 chiffres):\n0. Retour 00. Accueil"


# Locked ten minutes before midnight at February's end: the lock runs out on 1 March at 00:05.
@pytest.mark.parametrize("product_clock", [datetime(2027, 2, 28, 23, 50, tzinfo=UTC)], ids=["feb-28th-23:50"],
                         indirect=True)
def test_three_wrong_pins_lock_for_fifteen_minutes_and_the_lock_is_said_before_the_pin(app, phone, product_clock):
    app.extensions["parts"]["deps"].pins.set_pin("+221770000001", "4821")
    locked = phone("+221770000001")
    locked.dial()
    locked.answer("8")
    locked.answer("3")
    locked.answer("1357")
    locked.answer("2468")
    assert locked.answer("3579") == "END Code PIN bloqué après 3 erreurs. Réessayez dans 15 minutes."
    product_clock.advance(minutes=14, seconds=59)
    after = phone("+221770000001")
    after.dial()
    after.answer("8")
    assert after.answer("3") == ("CON Code PIN bloqué après 3 erreurs. Réessayez dans 15 minutes.\n"
                                 "1. Code PIN oublié\n0. Retour 00. Accueil")
    product_clock.advance(seconds=1)                      # fifteen minutes on: the PIN is asked again
    later = phone("+221770000001")
    later.dial()
    later.answer("8")
    assert later.answer("3") == "CON Entrez votre code PIN (4 chiffres):\n0. Retour 00. Accueil"
    assert later.answer("4821") == "CON Nouveau code PIN (4 chiffres):\n0. Retour 00. Accueil"


def test_preferences_in_english_alerts_and_pin_lock(app, phone):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")
    assert p.answer("8") == ("CON Preferences:\n1. Langue / Language\n2. Alerts\n3. Change my PIN\n"
                             "4. Forgotten PIN\n5. Numbers linked to the account\n6. Where messages go\n0. Back 00. Home")
    assert p.answer("2") == ("CON Alerts by SMS (choose to switch):\n1. Outage in my area: off\n2. Bill issued: off\n"
                             "3. Payment by another number: off\n0. Back 00. Home")
    assert "2. Bill issued: on" in p.answer("2")
    app.extensions["parts"]["deps"].pins.set_pin("+221770000002", "4821")
    r = phone("+221770000002")
    r.dial()
    r.answer("1")
    r.answer("8")
    assert r.answer("3") == "CON Enter your PIN (4 digits):\n0. Back 00. Home"
    r.answer("1357")
    assert r.answer("2468") == "CON Wrong PIN. Tries left: 1. PIN:\n0. Back 00. Home"
    assert r.answer("3579") == "END PIN locked after 3 wrong tries. Try again in 15 minutes."
