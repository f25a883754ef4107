"""The order of a USSD session's hops, over the callback: Africa's Talking sends the whole history in ``text``
and waits for each screen before the next hop, so each hop's text extends the one before by one reply.

Served sequentially, the hops of many sessions on several client threads and two server processes always get
the screen their input asks for. A hop whose text does not extend what the session already answered (the late
copy of an earlier hop, or hops of one session sent side by side, as ``make bench`` once did) gets the session's
last answer again and changes nothing: an input is never applied twice nor after the one that followed it (the
dial arriving after ``1`` used to be read as an empty reply: "Choix invalide." over the balance). A reply with a
``*`` in it reaches the dialog whole, not only what follows its last ``*``.

Real Flask app (two gunicorn processes for the served test), real Redis sessions, the reference back office on
loopback.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from app.settings import Settings

from ..support.engine import UssdPhone
from ..support.services import gunicorn_servers

NUMBER = "+221770000001"
BALANCE = ("CON Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures\n"
           "0. Retour 00. Accueil")
MAIN = "CON ElecNet - 1000001\n1. Solde et factures\n"
PhoneFactory = Callable[[str], UssdPhone]
MAIN_INVALID = "CON Choix invalide.\nElecNet - 1000001\n1. Solde et factures\n"


def test_a_dial_arriving_after_the_first_input_gets_that_inputs_screen_again(phone: PhoneFactory) -> None:
    p = phone(NUMBER)
    assert p.dial("1") == BALANCE     # *123*1#: the balance, the session's first hop
    # The dial "" of the same session arrives late: before, it was read as an empty reply on the balance
    # ("CON Choix invalide." over it, the answer make bench counted as bad); it is the balance again.
    assert p.post("") == BALANCE
    assert p.post("1*0").startswith(MAIN)
    assert p.post("1*0*1") == BALANCE


def test_an_older_hop_arriving_after_a_newer_one_changes_nothing(phone: PhoneFactory) -> None:
    p = phone(NUMBER)
    assert p.dial().startswith(MAIN)
    assert p.answer("1") == BALANCE
    assert p.answer("0").startswith(MAIN)
    # "1" again, late: not the balance a second time but the screen the session is on (its last answer).
    late = p.post("1")
    assert late.startswith(MAIN)
    assert p.post("") == late
    # The session goes on from where the gateway's history says it is.
    assert p.answer("1") == BALANCE
    assert p.answer("0").startswith(MAIN)


def test_a_hop_that_overtakes_the_one_before_it_is_one_reply_and_the_late_one_changes_nothing(
        phone: PhoneFactory) -> None:
    p = phone(NUMBER)
    assert p.dial().startswith(MAIN)
    # "1*0" arrives while "1" is still on its way: what it adds to "" is one reply, "1*0", which is no choice
    # of the main menu (never "0" alone, which would leave "1" to be applied after it).
    assert p.post("1*0").startswith(MAIN_INVALID)
    assert p.post("1").startswith(MAIN_INVALID)        # the late "1": the same screen again
    assert p.post("1*0*1") == BALANCE


def test_a_reply_with_a_star_in_it_reaches_the_ticket_whole(phone: PhoneFactory, backoffice_url: str) -> None:
    p = phone(NUMBER)
    p.dial()
    p.answer("4")
    p.answer("2")
    assert p.answer("2").startswith("CON Décrivez le problème")
    words = "Compteur *2 bloque depuis lundi"
    assert p.answer(words).startswith("CON Réclamation: Problème de compteur")
    assert "Référence: REC-" in p.answer("1")
    tickets = requests.get(f"{backoffice_url}/api/v1/tickets", params={"account_number": "1000001"},
                           timeout=5).json()["tickets"]
    assert [t["description"] for t in tickets if t["kind"] == "complaint"] == [words]


# ---------------------------------------------------------------- many sessions, served
@pytest.fixture
def two_servers(settings: Settings) -> Iterator[list[str]]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url or "",
           "BACKOFFICE_URL": settings.backoffice_url, "PAYMENT_CALLBACK_SECRET": "test-callback-secret",
           "RESUME_WINDOW_SECONDS": "0", "LOG_LEVEL": "WARNING", "SECRET_KEY": "test-hop-order-key"}
    with gunicorn_servers(env) as urls:
        yield urls


def _balance_session(urls: list[str], name: str, hops: int, seen: list[tuple[str, str, str]]) -> None:
    """One session as the bench's balance hop plays it, its hops one after the other, alternately on each
    server: the dial, then "1" (the balance) and "0" (back to the main menu) in turn."""
    form: dict[str, Any] = {"sessionId": name, "serviceCode": "*123#", "phoneNumber": NUMBER, "networkCode": "99999"}
    inputs: list[str] = []
    with requests.Session() as http:
        for hop in range(hops + 1):
            if hop:
                inputs.append("1" if hop % 2 else "0")
            text = "*".join(inputs)
            screen = http.post(f"{urls[hop % 2]}/ussd/africastalking", data={**form, "text": text}, timeout=15).text
            seen.append((name, text, screen))


def test_sequential_hops_of_many_sessions_on_two_processes_always_get_the_screen_asked_for(
        two_servers: list[str]) -> None:
    seen: list[tuple[str, str, str]] = []
    threads = [threading.Thread(target=_balance_session, args=(two_servers, f"order-{t}-{s}", 12, seen))
               for t in range(6) for s in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 12 * 13
    wrong = [(name, text, screen[:40]) for name, text, screen in seen
             if not (screen == BALANCE if text.endswith("1") else screen.startswith(MAIN))]
    assert wrong == []
