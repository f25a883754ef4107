"""Transcripts of a code sent by a hop whose session was never saved: the session store (a redis-server of the
test's own) dies right after the step queued the SMS, so the hop's save is lost (sent after the answer, its
failure only logged), and it comes back as it was before that hop (the last snapshot, as a failover that lost
the last writes). The gateway, which got no answer in time, sends the hop again, and the step runs again: the
outbox sends no second SMS (nor e-mail), and the one code received is the one the next screen accepts. So too
for "Renvoyer le code" (link, first PIN, e-mail). A PIN confirmation run again (a first PIN, a change, a reset),
or only answered again, answers as it did the first time: the PIN is set, once, and said so once."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import pytest
from flask import Flask

from app import worker
from app.factory import build_dispatcher
from app.settings import Settings
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_smtp import FakeSmtp
from tests.support.lost_save import store_lost_after_queuing
from tests.support.throwaway_redis import ThrowawayRedis

NAV = "0. Retour 00. Accueil"
STRANGER, HOLDER, PREPAID = "+221770019007", "+221770000001", "+221770000003"
LINK_CODE_SCREEN = ("CON Un code a été envoyé par SMS au numéro du titulaire du compte (+2217*****001). "
                    f"Entrez ce code (valable 3 min):\n1. Renvoyer le code\n{NAV}")
PIN_CODE_SCREEN = ("CON Premier usage. Un code de 6 chiffres vous a été envoyé par SMS. Entrez-le (valable 3 min):\n"
                   f"1. Renvoyer le code\n{NAV}")


@pytest.fixture
def settings(settings: Settings, provider: FakeAfricasTalking, mail: FakeSmtp,
             throwaway_redis: ThrowawayRedis) -> Settings:
    """Sessions (and the limits' counters) on the test's own Redis; SMS and e-mail through the fakes."""
    return replace(settings, redis_url=throwaway_redis.url, at_api_key=provider.api_key,
                   at_username=provider.username, at_api_url=provider.url, smtp_url=mail.url, quiet_hours="")


@pytest.fixture
def phone(app: Flask) -> Callable[[str], UssdPhone]:
    client = app.test_client()
    return lambda msisdn: UssdPhone(client, msisdn)


@pytest.fixture
def received(app: Flask, settings: Settings, provider: FakeAfricasTalking) -> Callable[[str], list[str]]:
    """The SMS a phone received, once the worker delivered the outbox."""
    dispatcher = build_dispatcher(settings, app.extensions["parts"]["db"])

    def messages(number: str) -> list[str]:
        dispatcher.run_once()
        return provider.messages_to(number)

    return messages


def opened(phone: Callable[[str], UssdPhone], msisdn: str, *path: str) -> tuple[UssdPhone, str]:
    """A new session on ``msisdn``, the options of ``path`` chosen in turn: the phone and the last screen."""
    p = phone(msisdn)
    screen = p.dial()
    for choice in path:
        screen = p.answer(choice)
    return p, screen


def code_in(sms: str) -> str:
    found = re.search(r"\b(\d{6})\b", sms)
    assert found, sms
    return found.group(1)


def test_the_link_code_the_holder_received_links_after_the_hop_that_sent_it_ran_again(
        phone, received, throwaway_redis):
    p = phone(STRANGER)
    assert p.dial().startswith("CON Bienvenue chez ElecNet. Ce numéro n'est lié à aucun compte.")
    p.answer("1")
    p.answer("1000001")
    with store_lost_after_queuing(throwaway_redis, "link_code"):
        assert p.answer("5500") == LINK_CODE_SCREEN
    # The gateway's retry of the hop: the session is where it was before it, so the step runs again.
    assert p.post("*".join(p.inputs)) == LINK_CODE_SCREEN
    [sms] = received(HOLDER)
    code = code_in(sms)
    assert p.answer(code) == f"CON Compte 1000001 lié à votre numéro.\n1. Continuer\n{NAV}"


def test_the_first_pin_code_the_caller_received_works_after_the_hop_that_sent_it_ran_again(
        app, phone, received, throwaway_redis):
    deps = app.extensions["parts"]["deps"]
    assert not deps.pins.is_set(PREPAID)
    p, _ = opened(phone, PREPAID, "8")
    with store_lost_after_queuing(throwaway_redis, "pin_code"):
        assert p.answer("3") == PIN_CODE_SCREEN
    assert p.post("*".join(p.inputs)) == PIN_CODE_SCREEN
    [sms] = received(PREPAID)
    code = code_in(sms)
    assert p.answer(code) == f"CON Premier usage: choisissez un code PIN secret (4 chiffres):\n{NAV}"


def test_the_email_code_the_mailbox_received_confirms_it_after_the_hop_that_sent_it_ran_again(
        phone, settings, mail, throwaway_redis):
    p, _ = opened(phone, HOLDER, "8", "6")
    assert p.answer("4") == ("CON Tapez votre adresse e-mail (ex: awa.diop@exemple.sn). Un code vous y sera "
                             f"envoyé:\n{NAV}")
    screen = f"CON Un code a été envoyé à a***@exemple.sn. Tapez-le ici (valable 30 minutes):\n1. Renvoyer le code\n{NAV}"
    with store_lost_after_queuing(throwaway_redis, "email_code"):
        assert p.answer("awa.diop@exemple.sn") == screen
    assert p.post("*".join(p.inputs)) == screen
    worker.run_once(settings)
    [letter] = mail.messages_to("awa.diop@exemple.sn")
    assert p.answer(code_in(letter)).startswith("CON Adresse e-mail confirmée: a***@exemple.sn.")


def test_a_first_pin_confirmed_by_a_hop_run_again_is_said_set_once_and_opens_the_gate(
        app, phone, received, throwaway_redis):
    p, _ = opened(phone, HOLDER, "8", "3")
    assert p.answer("5500") == f"CON Premier usage: choisissez un code PIN secret (4 chiffres):\n{NAV}"
    assert p.answer("4821") == f"CON Confirmez votre code PIN:\n{NAV}"
    done = f"CON Nouveau code PIN (4 chiffres):\n{NAV}"    # set: on to the change the gate guarded
    with store_lost_after_queuing(throwaway_redis, "pin_set"):
        assert p.answer("4821") == done
    # The gateway's retry: the session as before the hop, the PIN already set to the one confirmed.
    assert p.post("*".join(p.inputs)) == done
    assert received(HOLDER) == ["ElecNet: votre code PIN a été créé. Si ce n'est pas vous, appelez le 800 00 00."]
    audit = app.extensions["parts"]["deps"].security.for_subject(HOLDER)
    assert [e.kind for e in audit if e.kind.startswith("pin_")] == ["pin_set"]
    again = phone(HOLDER)               # the PIN is the one chosen, its tries all left
    again.dial()
    again.answer("8")
    assert again.answer("3") == f"CON Entrez votre code PIN (4 chiffres):\n{NAV}"
    assert again.answer("4821") == f"CON Nouveau code PIN (4 chiffres):\n{NAV}"


# ---------------------------------------------------------------- "send again", sent again by the gateway
def again(p: UssdPhone) -> str:
    """The gateway sends the same hop again (the same session, the same text)."""
    return p.post("*".join(p.inputs))


RESENT_LINK_SCREEN = ("CON Nouveau code envoyé au titulaire du compte (+2217*****001), l'ancien ne marche plus. "
                      f"Entrez-le (valable 3 min):\n1. Renvoyer le code\n{NAV}")


def test_a_link_code_sent_again_by_a_hop_the_gateway_retried_is_one_sms_and_the_one_that_links(
        phone, received, throwaway_redis):
    p, _ = opened(phone, STRANGER, "1", "1000001")
    assert p.answer("5500") == LINK_CODE_SCREEN
    assert p.answer("1") == RESENT_LINK_SCREEN
    assert again(p) == RESENT_LINK_SCREEN                  # answered again: no third code
    with store_lost_after_queuing(throwaway_redis, "link_code"):
        assert p.answer("1") == RESENT_LINK_SCREEN         # the third code, its hop's save lost
    assert again(p) == RESENT_LINK_SCREEN                  # the step runs again: the same code, not a fourth
    first, second, third = (code_in(sms) for sms in received(HOLDER))
    stale = second if second != third else first
    assert p.answer(stale).startswith("CON Code incorrect. Essais restants: 2.")
    assert p.answer(third) == f"CON Compte 1000001 lié à votre numéro.\n1. Continuer\n{NAV}"


def test_a_first_pin_code_sent_again_by_a_hop_run_again_after_a_lost_save_is_the_one_that_works(
        phone, received, throwaway_redis):
    p, _ = opened(phone, PREPAID, "8")
    assert p.answer("3") == PIN_CODE_SCREEN
    resent = ("CON Nouveau code envoyé par SMS au +2217*****003, l'ancien ne marche plus. Entrez-le (valable 3 min):"
              f"\n1. Renvoyer le code\n{NAV}")
    with store_lost_after_queuing(throwaway_redis, "pin_code"):
        assert p.answer("1") == resent
    assert again(p) == resent
    assert again(p) == resent
    first, second = (code_in(sms) for sms in received(PREPAID))
    if first != second:
        assert p.answer(first).startswith("CON Code incorrect. Essais restants: 2.")
    assert p.answer(second) == f"CON Premier usage: choisissez un code PIN secret (4 chiffres):\n{NAV}"


def test_an_email_code_sent_again_by_a_hop_run_again_after_a_lost_save_is_one_letter_that_confirms(
        phone, settings, mail, throwaway_redis):
    p, _ = opened(phone, HOLDER, "8", "6", "4")
    assert p.answer("awa.diop@exemple.sn").startswith("CON Un code a été envoyé à a***@exemple.sn.")
    resent = ("CON Nouveau code envoyé à a***@exemple.sn, l'ancien ne marche plus. Tapez-le ici (valable 30 "
              f"minutes):\n1. Renvoyer le code\n{NAV}")
    with store_lost_after_queuing(throwaway_redis, "email_code"):
        assert p.answer("1") == resent
    assert again(p) == resent
    worker.run_once(settings)
    _, second = (code_in(letter) for letter in mail.messages_to("awa.diop@exemple.sn"))   # one letter a send
    assert p.answer(second).startswith("CON Adresse e-mail confirmée: a***@exemple.sn.")


# ---------------------------------------------------------------- a PIN changed or reset, the hop sent again
PIN_CHANGED = f"CON Votre code PIN a été changé.\n1. Menu principal\n{NAV}"


def test_a_pin_change_confirmed_by_a_hop_the_gateway_sent_again_is_changed_once(app, phone, received,
                                                                                 throwaway_redis):
    deps = app.extensions["parts"]["deps"]
    deps.pins.set_pin(HOLDER, "4821")
    p, _ = opened(phone, HOLDER, "8")
    assert p.answer("3") == f"CON Entrez votre code PIN (4 chiffres):\n{NAV}"
    p.answer("4821")
    assert p.answer("5930") == f"CON Confirmez le nouveau code PIN:\n{NAV}"
    assert p.answer("5930") == PIN_CHANGED
    assert again(p) == PIN_CHANGED                         # a plain retry: the answer it was given
    q, _ = opened(phone, HOLDER, "8", "3", "5930", "6042")   # and again, its save lost this time
    with store_lost_after_queuing(throwaway_redis, "pin_changed"):
        assert q.answer("6042") == PIN_CHANGED
    assert again(q) == PIN_CHANGED                         # the step ran again: said changed, not "differ"
    changed = "ElecNet: votre code PIN a été modifié. Si ce n'est pas vous, appelez le 800 00 00."
    assert received(HOLDER) == [changed, changed]          # once per change
    audit = deps.security.for_subject(HOLDER)
    assert [e.kind for e in audit if e.kind.startswith("pin_")] == ["pin_changed", "pin_changed"]
    r, _ = opened(phone, HOLDER, "8", "3")   # the last PIN chosen, its tries all left
    assert r.answer("6042") == f"CON Nouveau code PIN (4 chiffres):\n{NAV}"


def test_a_forgotten_pin_reset_by_a_hop_run_again_after_a_lost_save_is_reset_once(app, phone, received,
                                                                                  throwaway_redis):
    deps = app.extensions["parts"]["deps"]
    deps.pins.set_pin(HOLDER, "4821")
    p, _ = opened(phone, HOLDER, "8")
    assert p.answer("4") == f"CON Code PIN oublié. Entrez votre numéro de compte (7 chiffres):\n{NAV}"
    p.answer("1000001")
    p.answer("5500")
    p.answer("5930")
    done = f"CON Nouveau code PIN enregistré. Un SMS vous le confirme.\n1. Continuer\n{NAV}"
    with store_lost_after_queuing(throwaway_redis, "pin_reset"):
        assert p.answer("5930") == done
    assert again(p) == done
    assert again(p) == done
    assert len(received(HOLDER)) == 1
    audit = deps.security.for_subject(HOLDER)
    assert [e.kind for e in audit if e.kind.startswith("pin_")] == ["pin_reset"]
    q, _ = opened(phone, HOLDER, "8", "3")
    assert q.answer("5930") == f"CON Nouveau code PIN (4 chiffres):\n{NAV}"


def test_an_email_code_whose_hop_lost_its_save_and_the_days_counts_still_counts_in_the_addresss_three_a_day(
        phone, settings, mail, throwaway_redis):
    # The session and the day's counts live in one Redis, which comes back as it was before the hop.
    p, _ = opened(phone, HOLDER, "8", "6", "4")
    with store_lost_after_queuing(throwaway_redis, "email_code"):
        assert p.answer("awa.diop@exemple.sn").startswith("CON Un code a été envoyé à a***@exemple.sn.")
    assert again(p).startswith("CON Un code a été envoyé à a***@exemple.sn.")
    assert p.answer("1").startswith("CON Nouveau code envoyé à a***@exemple.sn")          # the second today
    assert p.answer("1").startswith("CON Nouveau code envoyé à a***@exemple.sn")          # the third
    assert p.answer("1") == ("CON Trop de codes demandés aujourd'hui: aucun nouveau code envoyé. Tapez le dernier "
                             f"code envoyé à a***@exemple.sn:\n{NAV}")
    worker.run_once(settings)
    letters = mail.messages_to("awa.diop@exemple.sn")
    assert len(letters) == 3                                                             # no fourth
    assert p.answer(code_in(letters[-1])).startswith("CON Adresse e-mail confirmée: a***@exemple.sn.")
