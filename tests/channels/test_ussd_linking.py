"""Transcripts of account linking: it cannot be guessed (throttled per phone and per account, one answer
for every failure), the account's registered number confirms with a code and hears of every new link,
with a code to undo it."""

from __future__ import annotations

import logging
from typing import cast

import pytest
import redis

NAV = "0. Retour 00. Accueil"
REFUSED = f"CON Compte ou montant non reconnu.\n1. Réessayer\n2. Quitter\n{NAV}"


@pytest.fixture
def deps(app):
    return app.extensions["parts"]["deps"]


def sms(deps, kind: str) -> list[dict]:
    return [e for e in deps.outbox.pending() if e["kind"] == kind]


def start(phone, msisdn: str):
    p = phone(msisdn)
    assert p.dial().startswith("CON Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")
    p.answer("1")
    return p


def test_an_unknown_account_and_a_wrong_amount_get_the_same_answer(phone):
    p = start(phone, "+221770009001")
    p.answer("7654321")                  # no such account
    unknown = p.answer("5500")
    p.answer("1")
    p.answer("1000001")                  # a real account, a wrong amount
    wrong = p.answer("5600")
    assert unknown == wrong == REFUSED


def test_linking_is_throttled_per_account_whoever_tries(phone):
    for n in range(3):                   # three numbers, two wrong tries each: none near its own limit
        p = start(phone, f"+22177001000{n}")
        for guess in ("1000", "2000"):
            p.answer("1000001")
            assert p.answer(guess) == REFUSED
            p.answer("1")
    late = start(phone, "+221770010009")
    late.answer("1000001")
    assert late.answer("5500").startswith("END Trop d'essais.")   # the right amount, too late for this account
    other = start(phone, "+221770010009")
    other.answer("2000003")
    assert other.answer("46100").startswith("CON Un code a été envoyé par SMS")   # other accounts unaffected


def test_a_success_does_not_reset_the_phone_counter(phone, deps):
    p = start(phone, "+221770011111")
    for guess in ("1000", "2000"):
        p.answer("1000001")
        p.answer(guess)
        p.answer("1")
    p.answer("2000003")
    p.answer("46100")
    [sent] = sms(deps, "link_code")
    assert p.answer(sent["payload"]["code"]).startswith("CON Compte 2000003 lié à votre numéro.")
    # The same throttle guards the first-PIN proof: three wrong tries on the now linked account bring the
    # number to seven, beyond its six a day (had the success reset it, it would stand at four).
    q = phone("+221770011111")
    assert q.dial().startswith("CON ElecNet - 2000003")
    q.answer("8")
    q.answer("3")
    for guess in ("3000", "4000", "5000"):                    # in the account holder's language
        assert q.answer(guess).startswith("CON Amount not recognised.")
        q.answer("1")
    assert q.answer("46100").startswith("END Too many attempts.")


def test_the_registered_number_confirms_with_a_code_and_can_undo_the_link(phone, deps, caplog):
    caplog.set_level(logging.WARNING, logger="security")
    p = start(phone, "+221770012222")
    p.answer("1000001")
    assert p.answer("5500") == ("CON Un code a été envoyé par SMS au numéro du titulaire du compte (+2217*****001). "
                                f"Entrez ce code (valable 3 min):\n1. Renvoyer le code\n{NAV}")
    [sent] = sms(deps, "link_code")
    assert sent["msisdn"] == "+221770000001" and sent["language"] == "fr"
    code = sent["payload"]["code"]
    assert sent["payload"]["requested_by"] != "+221770012222"        # masked
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert p.answer(wrong) == f"CON Code incorrect. Essais restants: 2. Entrez le code envoyé au titulaire:\n1. Renvoyer le code\n{NAV}"
    # A code of the wrong format after a wrong one: one message, the format, asked again.
    assert p.answer("12345") == f"CON Le code a 6 chiffres.\nEntrez le code envoyé au titulaire:\n1. Renvoyer le code\n{NAV}"
    assert not deps.links.accounts_for("+221770012222")
    assert p.answer(code) == f"CON Compte 1000001 lié à votre numéro.\n1. Continuer\n{NAV}"
    assert [link.account_number for link in deps.links.accounts_for("+221770012222")] == ["1000001"]
    [notice] = sms(deps, "link_notice")
    assert notice["msisdn"] == "+221770000001"
    assert notice["payload"]["linked_number"] != "+221770012222"     # masked
    undo = notice["payload"]["undo_code"]
    assert notice["payload"]["undo_keyword"] == f"ANNULER {undo}"
    assert code not in caplog.text and "+221770012222" not in caplog.text
    assert "security event account_linked" in caplog.text and "security event link_refused" in caplog.text
    # The holder undoes it: the number no longer acts on the account.
    assert deps.links.undo("1000001", wrong if wrong != undo else "000000") is None
    assert deps.links.undo("1000001", undo) == "+221770012222"
    again = phone("+221770012222")
    assert again.dial().startswith("CON Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")


def test_three_wrong_codes_end_the_attempt_without_a_link(phone, deps):
    p = start(phone, "+221770013333")
    p.answer("1000001")
    p.answer("5500")
    code = sms(deps, "link_code")[0]["payload"]["code"]
    others = [f"{(int(code) + k) % 10**6:06d}" for k in (1, 2, 3)]
    assert p.answer(others[0]).startswith("CON Code incorrect. Essais restants: 2.")
    assert p.answer(others[1]).startswith("CON Code incorrect. Essais restants: 1.")
    assert p.answer(others[2]).startswith("END Trop d'essais.")
    assert not deps.links.accounts_for("+221770013333")


def test_the_code_is_kept_hashed_in_the_session(phone, deps, redis_url):
    p = start(phone, "+221770014444")
    p.answer("1000001")
    p.answer("5500")
    code = sms(deps, "link_code")[0]["payload"]["code"]
    client = redis.Redis.from_url(redis_url)   # decode_responses off: every key and value is bytes
    stored = b""
    for key in client.keys("*"):
        kind = client.type(key)
        if kind == b"string":
            stored += cast(bytes, client.get(key) or b"")
        elif kind == b"hash":
            stored += b"".join(k + v for k, v in cast(dict[bytes, bytes], client.hgetall(key)).items())
    client.close()
    assert stored and code.encode() not in stored


def test_the_holder_removes_a_link_from_the_menu_the_notice_points_to(phone, deps, caplog):
    caplog.set_level(logging.WARNING, logger="security")
    p = start(phone, "+221770015555")
    p.answer("1000001")
    p.answer("5500")
    p.answer(sms(deps, "link_code")[0]["payload"]["code"])
    [notice] = sms(deps, "link_notice")
    assert notice["payload"]["undo_menu"] == "8 > 5"
    stranger = phone("+221770015555")
    stranger.dial()
    stranger.answer("8")
    assert stranger.answer("5") == ("CON Seul le numéro du titulaire du compte peut gérer ses liens.\n"
                                    f"{NAV}")
    holder = phone("+221770000001")
    holder.dial()
    holder.answer("8")
    assert holder.answer("5") == ("CON Numéros liés au compte 1000001 (choisir pour retirer):\n"
                                  f"1. +2217*****555\n{NAV}")
    assert holder.answer("1") == (f"CON Retirer le lien de +2217*****555 au compte 1000001 ?\n1. Confirmer\n"
                                  f"2. Annuler\n{NAV}")
    assert holder.answer("1") == f"CON Lien retiré.\n1. Menu principal\n{NAV}"
    assert "security event link_undone" in caplog.text and "+221770015555" not in caplog.text
    again = phone("+221770015555")
    assert again.dial().startswith("CON Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")
    holder = phone("+221770000001")
    holder.dial()
    holder.answer("8")
    assert holder.answer("5") == f"CON Aucun autre numéro n'est lié à ce compte.\n{NAV}"


def test_the_holder_who_cancels_the_removal_hears_that_no_link_was_removed(phone, deps):
    p = start(phone, "+221770016666")
    p.answer("1000001")
    p.answer("5500")
    p.answer(sms(deps, "link_code")[0]["payload"]["code"])
    holder = phone("+221770000001")
    holder.dial()
    holder.answer("8")
    holder.answer("5")
    assert holder.answer("1").startswith("CON Retirer le lien de +2217*****666 au compte 1000001 ?")
    assert holder.answer("2") == f"CON Demande annulée. Aucun lien n'a été retiré.\n1. Menu principal\n{NAV}"
    assert [link.account_number for link in deps.links.accounts_for("+221770016666")] == ["1000001"]
    assert holder.answer("1").startswith("CON ElecNet - 1000001\n1. Solde et factures")
    assert phone("+221770016666").dial().startswith("CON ElecNet - 1000001")     # still linked


def test_the_removal_cancelled_in_english_removes_nothing(phone, deps):
    p = start(phone, "+221770017777")
    p.answer("2000001")
    p.answer("185200")
    p.answer(sms(deps, "link_code")[0]["payload"]["code"])
    holder = phone("+221770000002")
    holder.dial()
    holder.answer("1")                                                  # account 2000001
    holder.answer("8")
    holder.answer("5")
    assert holder.answer("1") == ("CON Remove the link of +2217*****777 to account 2000001?\n1. Confirm\n"
                                  "2. Cancel\n0. Back 00. Home")
    assert holder.answer("2") == "CON Request cancelled. No link was removed.\n1. Main menu\n0. Back 00. Home"
    assert [link.account_number for link in deps.links.accounts_for("+221770017777")] == ["2000001"]
    assert holder.answer("1").startswith("CON ElecNet - 2000001\n1. Balance and bills")


def test_a_second_account_linked_in_the_same_conversation_takes_its_own_holders_code(phone, deps):
    p = start(phone, "+221770015555")
    p.answer("1000001")
    assert p.answer("5500").startswith("CON Un code a été envoyé par SMS au numéro du titulaire du compte "
                                       "(+2217*****001).")
    # Back to the account number: the caller means another account, in the same conversation.
    assert p.answer("0") == f"CON Pour vérifier, entrez le montant de votre dernière facture (FCFA):\n{NAV}"
    assert p.answer("0") == f"CON Entrez votre numéro de compte (7 chiffres):\n{NAV}"
    p.answer("2000003")
    assert p.answer("46100") == ("CON Un code a été envoyé par SMS au numéro du titulaire du compte (+2217*****002). "
                                 f"Entrez ce code (valable 3 min):\n1. Renvoyer le code\n{NAV}")
    first, second = sms(deps, "link_code")
    assert (first["msisdn"], second["msisdn"]) == ("+221770000001", "+221770000002")
    # The first account's code does not link the second one.
    if first["payload"]["code"] != second["payload"]["code"]:
        assert p.answer(first["payload"]["code"]).startswith("CON Code incorrect. Essais restants: 2.")
    assert p.answer(second["payload"]["code"]) == f"CON Compte 2000003 lié à votre numéro.\n1. Continuer\n{NAV}"
    assert [link.account_number for link in deps.links.accounts_for("+221770015555")] == ["2000003"]
    # Only the second account's holder hears of a link; each undo code undoes its own link.
    [notice] = sms(deps, "link_notice")
    assert notice["msisdn"] == "+221770000002"
    assert deps.links.undo("1000001", notice["payload"]["undo_code"]) is None
    assert deps.links.undo("2000003", notice["payload"]["undo_code"]) == "+221770015555"
