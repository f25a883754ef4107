"""Transcripts of a code that never arrives, French and English: every code screen (linking an account, a
prepaid meter's first PIN, an e-mail address) offers "1. Renvoyer le code" / "1. Send the code again". A new
code goes (an SMS to the holder or the caller, an e-mail through a real SMTP server on loopback), the old one
stops working, the screen says where the new one went, and each resend is a security event. The resends stay
within the caps of the first codes; past them no code goes, the screen says so, and the last code sent still
works."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app import worker
from app.settings import Settings
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_smtp import FakeSmtp

NAV_FR, NAV_EN = "0. Retour 00. Accueil", "0. Back 00. Home"
RESEND_FR, RESEND_EN = "1. Renvoyer le code", "1. Send the code again"
STRANGER, PREPAID, ENGLISH_PREPAID, AWA, BUSINESS = ("+221770019001", "+221770000003", "+221770000033",
                                                     "+221770000001", "+221770000002")


@pytest.fixture
def settings(settings: Settings, provider: FakeAfricasTalking, mail: FakeSmtp) -> Settings:
    """SMS and e-mail through their fakes; quiet hours off (tests run at any hour)."""
    return replace(settings, at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   smtp_url=mail.url, quiet_hours="")


@pytest.fixture
def deps(app):
    return app.extensions["parts"]["deps"]


@pytest.fixture
def security_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING, logger="security")
    yield caplog


def codes(deps, kind: str) -> list[str]:
    return [row["payload"]["code"] for row in deps.outbox.pending() if row["kind"] == kind]


def other_than(*codes_sent: str) -> str:
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in codes_sent)


# ---------------------------------------------------------------- linking an account (code to the holder)
def link_code_screen(phone, msisdn: str = STRANGER):
    p = phone(msisdn)
    assert p.dial().startswith("CON Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")
    p.answer("1")
    p.answer("1000001")
    assert p.answer("5500") == ("CON Un code a été envoyé par SMS au numéro du titulaire du compte (+2217*****001). "
                                f"Entrez ce code (valable 3 min):\n{RESEND_FR}\n{NAV_FR}")
    return p


def test_linking_a_code_sent_again_replaces_the_first_and_the_screen_says_where_it_went(phone, deps, security_log):
    p = link_code_screen(phone)
    [first] = codes(deps, "link_code")
    assert p.answer("1") == ("CON Nouveau code envoyé au titulaire du compte (+2217*****001), l'ancien ne marche "
                             f"plus. Entrez-le (valable 3 min):\n{RESEND_FR}\n{NAV_FR}")
    [_, second] = codes(deps, "link_code")
    assert "security event code_sent" in security_log.text and second not in security_log.text
    stale = first if first != second else other_than(second)
    assert p.answer(stale) == ("CON Code incorrect. Essais restants: 2. Entrez le code envoyé au titulaire:\n"
                               f"{RESEND_FR}\n{NAV_FR}")
    assert not deps.links.accounts_for(STRANGER)
    assert p.answer(second) == f"CON Compte 1000001 lié à votre numéro.\n1. Continuer\n{NAV_FR}"
    assert [link.account_number for link in deps.links.accounts_for(STRANGER)] == ["1000001"]


def test_linking_codes_sent_again_stop_at_the_sessions_tries_and_the_last_still_links(phone, deps):
    p = link_code_screen(phone, "+221770019002")
    assert p.answer("1").startswith("CON Nouveau code envoyé au titulaire")        # the second code
    assert p.answer("1").startswith("CON Nouveau code envoyé au titulaire")        # the third
    assert p.answer("1") == ("CON Nous ne pouvons plus envoyer de code pour l'instant. Entrez le dernier code envoyé "
                             f"au titulaire, ou appelez le 800 00 00:\n{NAV_FR}")
    assert len(codes(deps, "link_code")) == 3                                      # no fourth SMS to the holder
    # The screen offers no more resends: "1" is now a code of the wrong format.
    assert p.answer("1") == f"CON Le code a 6 chiffres.\nEntrez le code envoyé au titulaire:\n{NAV_FR}"
    assert p.answer(codes(deps, "link_code")[-1]).startswith("CON Compte 1000001 lié à votre numéro.")


def test_linking_codes_sent_again_count_in_the_accounts_tries_of_the_day(phone, deps):
    # Two numbers, each with a first code and two more: six tries of account 1000001 today, its limit.
    for n in (3, 4):
        p = link_code_screen(phone, f"+22177001900{n}")
        p.answer("1")
        p.answer("1")
    q = phone("+221770019005")
    q.dial()
    q.answer("1")
    q.answer("1000001")
    assert q.answer("5500").startswith("END Trop d'essais.")                      # the right amount, too late today
    assert len(codes(deps, "link_code")) == 6


# ---------------------------------------------------------------- a prepaid meter's first PIN (code to the caller)
def first_pin_code(phone, msisdn: str) -> tuple[UssdPhone, str]:
    """A new session on Preferences > Change my PIN: a prepaid caller without a PIN gets a code by SMS."""
    p = phone(msisdn)
    p.dial()
    p.answer("8")
    return p, p.answer("3")


def test_first_pin_code_sent_again_in_english_then_the_sessions_three_codes_and_the_last_still_works(
        app, phone, deps, security_log):
    deps.links.link(ENGLISH_PREPAID, "3000001", "self-service")
    deps.preferences.set_language(ENGLISH_PREPAID, "en")
    p, _ = first_pin_code(phone, ENGLISH_PREPAID)
    [first] = codes(deps, "pin_code")
    assert p.answer("1") == ("CON New code sent by SMS to +2217*****033; the old one no longer works. Enter it "
                             f"(valid for 3 min):\n{RESEND_EN}\n{NAV_EN}")
    [_, second] = codes(deps, "pin_code")
    assert "security event code_sent" in security_log.text
    stale = first if first != second else other_than(second)
    assert p.answer(stale) == f"CON Wrong code. Tries left: 2. Enter the code you received by SMS:\n{RESEND_EN}\n{NAV_EN}"
    assert p.answer("1").startswith("CON New code sent by SMS to +2217*****033;")   # the session's third code
    assert p.answer("1") == ("CON We cannot send you any more codes for now. Enter the last code you received, or "
                             f"call customer service on 800 00 00:\n{NAV_EN}")
    assert len(codes(deps, "pin_code")) == 3
    assert p.answer(codes(deps, "pin_code")[-1]) == f"CON First use: choose a secret PIN (4 digits):\n{NAV_EN}"


def test_first_pin_codes_sent_again_count_in_the_numbers_codes_of_the_day(app, phone, deps, settings):
    # PIN_CODES_PER_DAY is 6: two sessions of three codes each spend it; a third session gets none.
    for _ in range(2):
        p, _ = first_pin_code(phone, PREPAID)
        p.answer("1")
        assert p.answer("1").startswith("CON Nouveau code envoyé par SMS au +2217*****003, l'ancien ne marche plus.")
    assert len(codes(deps, "pin_code")) == 6
    _, screen = first_pin_code(phone, PREPAID)
    assert screen.startswith("END Nous ne pouvons plus vous envoyer de code aujourd'hui.")
    assert len(codes(deps, "pin_code")) == 6


# ---------------------------------------------------------------- an e-mail address (code by e-mail)
def mailed(settings: Settings, mail: FakeSmtp, address: str) -> list[str]:
    """The worker sends the outbox; every code ``address`` has received, oldest first."""
    worker.run_once(settings)
    return [found.group(1) for found in (re.search(r"(?:est|is) (\d{6})\.", letter)
                                         for letter in mail.messages_to(address)) if found]


def email_code_screen(phone, msisdn: str, address: str) -> tuple[UssdPhone, str]:
    p = phone(msisdn)
    p.dial()
    if msisdn == BUSINESS:
        p.answer("1")                       # which account: the first
    p.answer("8")
    p.answer("6")
    p.answer("4")                           # add an address
    return p, p.answer(address)


def test_an_email_code_sent_again_in_french_replaces_the_first_and_wrong_codes_count_down(
        phone, settings, mail, deps, security_log):
    p, _ = email_code_screen(phone, AWA, "awa@exemple.sn")
    [first] = mailed(settings, mail, "awa@exemple.sn")
    assert p.answer("1") == ("CON Nouveau code envoyé à a***@exemple.sn, l'ancien ne marche plus. Tapez-le ici "
                             f"(valable 30 minutes):\n{RESEND_FR}\n{NAV_FR}")
    [_, second] = mailed(settings, mail, "awa@exemple.sn")
    assert "security event code_sent" in security_log.text
    stale = first if first != second else other_than(second)
    assert p.answer(stale) == ("CON Code incorrect. Essais restants: 2. Tapez le code envoyé à a***@exemple.sn:\n"
                               f"{RESEND_FR}\n{NAV_FR}")
    assert p.answer(other_than(second, stale)).startswith("CON Code incorrect. Essais restants: 1.")
    assert p.answer(second).startswith("CON Adresse e-mail confirmée: a***@exemple.sn.")
    assert deps.contacts.contact(AWA).email == "awa@exemple.sn"


def test_email_codes_sent_again_in_english_stop_at_the_addresss_three_a_day_and_the_last_still_works(
        phone, settings, mail, deps):
    p, screen = email_code_screen(phone, BUSINESS, "ops@entreprise.sn")
    assert screen.startswith("CON A code was sent to o***@entreprise.sn.")
    assert p.answer("1") == ("CON New code sent to o***@entreprise.sn; the old one no longer works. Type it here "
                             f"(valid for 30 minutes):\n{RESEND_EN}\n{NAV_EN}")
    assert p.answer("1").startswith("CON New code sent to o***@entreprise.sn;")      # the address's third today
    assert p.answer("1") == ("CON Too many codes asked for today: no new code was sent. Type the last code you "
                             f"received at o***@entreprise.sn:\n{NAV_EN}")
    sent = mailed(settings, mail, "ops@entreprise.sn")
    assert len(sent) == 3
    assert p.answer(sent[-1]).startswith("CON E-mail address confirmed: o***@entreprise.sn.")


# ---------------------------------------------------------------- an e-mail code that ran out: a new one right there
EXPIRED_FR = f"CON Code expiré ou trop d'erreurs. Pour recevoir un nouveau code:\n1. Nouveau code\n{NAV_FR}"
EXPIRED_EN = f"CON Code expired or too many wrong tries. To get a new code:\n1. New code\n{NAV_EN}"


def test_an_email_code_given_up_after_three_wrong_tries_offers_a_new_code_that_confirms_in_french(
        phone, settings, mail, deps, security_log):
    p, _ = email_code_screen(phone, AWA, "awa@exemple.sn")
    [first] = mailed(settings, mail, "awa@exemple.sn")
    wrong = [c for c in ("000000", "111111", "222222", "333333") if c != first]
    p.answer(wrong[0])
    p.answer(wrong[1])
    assert p.answer(wrong[2]) == EXPIRED_FR
    assert p.answer("1") == ("CON Nouveau code envoyé à a***@exemple.sn, l'ancien ne marche plus. Tapez-le ici "
                             f"(valable 30 minutes):\n{RESEND_FR}\n{NAV_FR}")
    [_, second] = mailed(settings, mail, "awa@exemple.sn")
    assert p.answer(second).startswith("CON Adresse e-mail confirmée: a***@exemple.sn.")
    assert deps.contacts.contact(AWA).email == "awa@exemple.sn"


@pytest.mark.parametrize("product_clock", [datetime(2026, 11, 27, 9, 0, tzinfo=UTC)], indirect=True)
def test_an_email_code_past_its_thirty_minutes_offers_a_new_code_that_confirms_in_english(
        phone, settings, mail, deps, product_clock):
    p, screen = email_code_screen(phone, BUSINESS, "ops@entreprise.sn")
    assert screen.startswith("CON A code was sent to o***@entreprise.sn.")
    [first] = mailed(settings, mail, "ops@entreprise.sn")
    product_clock.advance(minutes=31)                  # the e-mail came late: the code no longer works
    assert p.answer(first) == EXPIRED_EN
    assert p.answer("1") == ("CON New code sent to o***@entreprise.sn; the old one no longer works. Type it here "
                             f"(valid for 30 minutes):\n{RESEND_EN}\n{NAV_EN}")
    [_, second] = mailed(settings, mail, "ops@entreprise.sn")
    assert p.answer(second).startswith("CON E-mail address confirmed: o***@entreprise.sn.")


def test_a_new_code_after_the_last_ran_out_stays_within_the_addresss_three_a_day(phone, settings, mail, deps):
    p, _ = email_code_screen(phone, AWA, "awa@exemple.sn")
    p.answer("1")
    p.answer("1")                                       # the address's third code today
    [*_, last] = mailed(settings, mail, "awa@exemple.sn")
    wrong = [c for c in ("000000", "111111", "222222", "333333") if c != last]
    p.answer(wrong[0])
    p.answer(wrong[1])
    assert p.answer(wrong[2]) == EXPIRED_FR
    assert p.answer("1") == "END Trop de codes demandés aujourd'hui. Réessayez demain."
    assert len(mailed(settings, mail, "awa@exemple.sn")) == 3          # no fourth e-mail
    assert deps.contacts.contact(AWA).email is None
