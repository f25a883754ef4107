"""Transcripts of the Pay journey over the USSD callback, with the provider's callback for real.

The engine is served on a loopback port (the back office POSTs the signed callback to
``{public_base_url}/payments/callback``), the back office approves or declines payments by
hand (``POST /api/v1/payments/{id}/approve|decline``), Redis holds the sessions and a
migrated SQLite file the ledger, the PINs and the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from app.factory import build_dispatcher, create_app
from app.settings import Settings
from backoffice.models import PaymentIntent
from dialogs.codes import hash_code
from dialogs.payments import settle_provider_result
from dialogs.registry import Deps
from dialogs.stores import ProviderResult
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import fake_africastalking
from tests.support.outbox_rows import raw_rows
from tests.support.ports import closed_port
from tests.support.services import serve_wsgi

HOME_FR = ("CON ElecNet - 1000001\n1. Solde et factures\n2. Consommation\n3. Payer\n4. Panne/réclamation\n"
           "5. Suivi demande\n6. Délai de paiement\n7. Simulateur\n8. Préférences")
NAV = "0. Retour 00. Accueil"
NAV_EN = "0. Back 00. Home"
WALLETS = "1. Orange Money\n2. Wave\n3. Free Money\n4. Annuler"      # Cancel under the operators
WALLETS_EN = "1. Orange Money\n2. Wave\n3. Free Money\n4. Cancel"
PIN = "2468"
_REF = re.compile(r"R(?:é|e)f\. (PAY-[0-9A-F]{16})$")


def sign(secret: str, raw_body: bytes, timestamp: int) -> str:
    """The provider's documented signature, written out here (not the product's helper):
    ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def settings(engine_db: str, redis_url: str, backoffice_url: str, engine_port: int) -> Settings:
    """As the suite's settings, with the public URL the back office calls back on."""
    return Settings(resume_window_seconds=0, database_url=engine_db, redis_url=redis_url, backoffice_url=backoffice_url,
                    backend_connect_timeout=0.5, backend_read_timeout=2.0,
                    payment_callback_secret="test-callback-secret",
                    public_base_url=f"http://127.0.0.1:{engine_port}")


@pytest.fixture
def served(app: Flask, engine_port: int) -> Iterator[str]:
    """The engine on a real loopback port, so the provider's callbacks reach it."""
    with serve_wsgi(app, engine_port) as url:
        yield url


@pytest.fixture
def deps(app: Flask) -> Any:
    return app.extensions["parts"]["deps"]


class Provider:
    """The back office's mobile-money side, as the customer's handset and the tests drive it."""

    def __init__(self, url: str, app: Flask) -> None:
        self.url, self.app = url, app

    def approve(self, payment_id: str) -> None:
        requests.post(f"{self.url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()

    def decline(self, payment_id: str) -> None:
        requests.post(f"{self.url}/api/v1/payments/{payment_id}/decline", timeout=5).raise_for_status()

    def resend(self, payment_id: str) -> None:
        requests.post(f"{self.url}/api/v1/payments/{payment_id}/resend-callback", timeout=5).raise_for_status()

    def count(self) -> int:
        with self.app.extensions["backoffice"].sessions() as db:
            # The demo prepaid customer's seeded purchase (idempotency key "seed-...") is not one of ours.
            return int(db.scalar(select(func.count()).select_from(PaymentIntent)
                                 .where(PaymentIntent.idempotency_key.not_like("seed-%"))) or 0)

    def delivered(self, payment_id: str) -> int:
        """How many callback tries of this payment the engine answered 2xx to (or attempted)."""
        with self.app.extensions["backoffice"].sessions() as db:
            intent = db.get(PaymentIntent, payment_id)
            return int(intent.callback_attempts) if intent else 0


@pytest.fixture
def provider(backoffice_url: str, backoffice_app: Flask) -> Provider:
    return Provider(backoffice_url, backoffice_app)


def wait_for(check: Callable[[], Any], timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def settled(deps: Any, payment_id: str) -> Any:
    return wait_for(lambda: (p := deps.ledger.by_provider_id(payment_id)) and p.status in ("succeeded", "failed")
                    and p)


def reference(screen: str) -> str:
    found = _REF.search(screen)
    assert found, screen
    return found.group(1)


def outbox(deps: Any, expected: int = 0) -> list[dict[str, Any]]:
    """The outbox events; with ``expected``, once that many are there (the callback writes the
    ledger, then the outbox, while the test may already be reading)."""
    def payment_events() -> list[dict[str, Any]]:   # not the PIN notices ("your PIN was set")
        return [e for e in deps.outbox.pending() if not e["kind"].startswith("pin_")]

    if expected:
        wait_for(lambda: len(payment_events()) >= expected)
    return payment_events()


# ---------------------------------------------------------------- transcripts
def test_pay_the_whole_balance_in_french_then_the_balance_is_zero(
        phone: Callable[[str], UssdPhone], served: str, provider: Provider, deps: Deps) -> None:
    p: UssdPhone = phone("+221770000001")
    assert p.dial() == HOME_FR
    assert p.answer("3") == ("CON Payer - compte 1000001\nA payer: 12 500 FCFA\n1. Payer tout le solde\n"
                             f"2. Payer un autre montant\n3. Derniers paiements\n{NAV}")
    assert p.answer("1") == f"CON Payer 12 500 FCFA avec:\n{WALLETS}\n{NAV}"
    assert p.answer("1") == ("CON Payer 12 500 FCFA sur le compte 1000001 avec Orange Money ?\n1. Confirmer\n"
                             f"2. Annuler\n{NAV}")
    assert p.answer("1").startswith("CON Premier usage. Pour vérifier, entrez le montant de la dernière facture")
    assert p.answer("5500") == f"CON Premier usage: choisissez un code PIN secret (4 chiffres):\n{NAV}"
    assert p.answer(PIN) == f"CON Confirmez votre code PIN:\n{NAV}"
    end = p.answer(PIN)
    payment_id = reference(end)
    assert end == ("END Validez le paiement de 12 500 FCFA sur votre téléphone (invite mobile money). "
                   f"Vous recevrez une confirmation par SMS. Réf. {payment_id}")
    assert deps.ledger is not None
    local = deps.ledger.by_provider_id(payment_id)
    assert local is not None
    assert (local.status, local.amount, local.account_number, local.purpose) == ("pending", 12500, "1000001", "bill")

    provider.approve(payment_id)
    paid = settled(deps, payment_id)
    assert paid.status == "succeeded" and paid.reference.startswith("MM")
    [receipt] = outbox(deps, 1)
    assert (receipt["kind"], receipt["msisdn"], receipt["language"]) == ("payment_receipt", "+221770000001", "fr")
    assert receipt["payload"]["reference"] == paid.reference
    assert receipt["payload"]["amount"] == "12500"

    again = phone("+221770000001")
    assert again.dial() == HOME_FR
    assert again.answer("1").startswith("CON Compte 1000001\nA payer: 0 FCFA\nFactures impayées: 0")
    assert again.answer("00") == HOME_FR
    assert again.answer("3") == ("CON Compte 1000001: rien à payer, votre solde est de 0 FCFA.\n"
                                 f"3. Derniers paiements\n{NAV}")
    listing = again.answer("3")
    assert re.fullmatch(r"CON Derniers paiements \(choisissez\):\n1\. \d\d/\d\d/\d{4} 12 500 FCFA réussi\n" + NAV, listing)
    detail = again.answer("1")
    assert re.fullmatch(r"CON Paiement réussi le \d\d/\d\d \d\d:\d\d\nCompte: 1000001\nMontant: 12 500 FCFA\n"
                        rf"Référence: {paid.reference}\n{NAV}", detail), detail


def test_business_customer_pays_an_amount_in_english(phone, served, provider, deps):
    p = phone("+221770000002")
    p.dial()
    assert p.answer("1").startswith("CON ElecNet - 2000001")
    menu = p.answer("3")
    balance = re.search(r"Balance due: ([\d,]+) FCFA", menu)
    assert balance, menu
    assert menu == (f"CON Pay - account 2000001\nBalance due: {balance.group(1)} FCFA\n1. Pay the full balance\n"
                    f"2. Pay another amount\n3. Last payments\n{NAV_EN}")
    assert p.answer("2") == f"CON Balance due: {balance.group(1)} FCFA\nAmount to pay (FCFA):\n{NAV_EN}"
    assert p.answer("50.5") == ("CON Amount from 100 to 2,000,000 FCFA, whole numbers only.\n"
                                f"Balance due: {balance.group(1)} FCFA\nAmount to pay (FCFA):\n{NAV_EN}")
    assert p.answer("99") .startswith("CON Amount from 100 to 2,000,000 FCFA")
    assert p.answer("1500") == f"CON Pay 1,500 FCFA with:\n{WALLETS_EN}\n{NAV_EN}"
    assert p.answer("2") == ("CON Pay 1,500 FCFA to account 2000001 with Wave?\n1. Confirm\n2. Cancel\n"
                             f"{NAV_EN}")
    assert p.answer("1").startswith("CON First use. To check, enter the amount of the last bill of account 2000001")
    assert p.answer("185200") == f"CON First use: choose a secret PIN (4 digits):\n{NAV_EN}"
    assert p.answer("1234") == f"CON PIN too easy to guess. Choose another PIN (4 digits):\n{NAV_EN}"
    p.answer(PIN)
    end = p.answer(PIN)
    payment_id = reference(end)
    assert end == ("END Approve the payment of 1,500 FCFA on your phone (mobile money prompt). "
                   f"You will receive an SMS receipt. Ref. {payment_id}")
    provider.approve(payment_id)
    assert settled(deps, payment_id).status == "succeeded"
    before = int(balance.group(1).replace(",", ""))
    again = phone("+221770000002")
    again.dial()
    again.answer("1")
    assert f"Balance due: {before - 1500:,} FCFA" in again.answer("1")


def test_a_payment_on_its_way_is_not_offered_again_so_one_balance_is_never_paid_twice(phone, served, provider,
                                                                                    deps):
    # The back office counts a payment only once it is approved: until then its balance still shows it as owed.
    deps.pins.set_pin("+221770000001", PIN)
    first = phone("+221770000001")
    first.dial("3")
    first.answer("2")
    first.answer("5000")
    first.answer("1")
    first.answer("1")
    waiting = reference(first.answer(PIN))             # the customer has not approved it on the handset yet

    second = phone("+221770000001")                     # a redial, or another number linked to the account
    second.dial()
    assert second.answer("3") == ("CON Compte 1000001\nReste à payer: 7 500 FCFA\n5 000 FCFA en confirmation\n"
                                  f"1. Payer tout le reste\n2. Payer un autre montant\n3. Derniers paiements\n{NAV}")
    second.answer("2")
    assert second.answer("12500").startswith("CON Montant refusé: il dépasse les 7 500 FCFA à payer.\n")
    assert second.answer("2") == f"CON Payer 7 500 FCFA avec:\n{WALLETS}\n{NAV}"
    second.answer("1")
    second.answer("1")
    rest = reference(second.answer(PIN))

    third = phone("+221770000001")
    third.dial()
    assert third.answer("3") == ("CON Compte 1000001: votre paiement de 12 500 FCFA est en cours de confirmation. "
                                 f"Rien d'autre à payer pour l'instant.\n3. Derniers paiements\n{NAV}")
    provider.approve(waiting)
    provider.approve(rest)
    assert settled(deps, waiting).status == settled(deps, rest).status == "succeeded"
    done = phone("+221770000001")
    done.dial()
    assert done.answer("1").startswith("CON Compte 1000001\nA payer: 0 FCFA\n")   # paid once, not 17 500 over


def test_an_amount_above_the_balance_is_refused(phone, provider):
    p = phone("+221770000001")
    p.dial("3")
    assert p.answer("2") == f"CON A payer: 12 500 FCFA\nMontant à régler (FCFA):\n{NAV}"
    assert p.answer("20000") == ("CON Montant refusé: il dépasse les 12 500 FCFA à payer.\n1. Autre montant\n"
                                 f"2. Payer tout le solde\n{NAV}")
    p.answer("1")
    assert p.answer("3000000").startswith("CON Montant de 100 à 2 000 000 FCFA, sans décimales.\n")
    assert p.answer("5000") == f"CON Payer 5 000 FCFA avec:\n{WALLETS}\n{NAV}"
    assert p.answer("1").startswith("CON Payer 5 000 FCFA sur le compte 1000001 avec Orange Money ?")
    assert p.answer("2") == "END Paiement annulé. Rien n'a été débité."
    assert provider.count() == 0


def test_cancelling_at_the_wallet_choice_pays_nothing_and_leads_to_the_main_menu(phone, provider):
    p = phone("+221770000001")
    p.dial("3")
    p.answer("2")
    assert p.answer("5000") == f"CON Payer 5 000 FCFA avec:\n{WALLETS}\n{NAV}"
    assert p.answer("4") == f"CON Paiement annulé. Rien n'a été payé.\n1. Menu principal\n{NAV}"
    assert provider.count() == 0
    assert p.answer("0") == f"CON Payer 5 000 FCFA avec:\n{WALLETS}\n{NAV}"      # Back: the choice again
    p.answer("4")
    assert p.answer("1") == HOME_FR                                              # the main menu
    assert p.answer("3").startswith("CON Payer - compte 1000001")
    assert p.answer("3") == f"CON Aucun paiement au compte 1000001 fait depuis ce numéro pour le moment.\n{NAV}"
    assert provider.count() == 0


def test_cancelling_the_wallet_choice_in_english(phone, provider):
    p = phone("+221770000002")
    p.dial()
    p.answer("1")                                             # account 2000001
    p.answer("3")
    balance = p.answer("1")
    assert balance.startswith("CON Pay ") and balance.endswith(f"with:\n{WALLETS_EN}\n{NAV_EN}")
    assert p.answer("4") == f"CON Payment cancelled. Nothing was paid.\n1. Main menu\n{NAV_EN}"
    assert p.answer("1").startswith("CON ElecNet - 2000001\n1. Balance and bills")
    assert provider.count() == 0


def test_a_declined_payment_is_failed_with_a_notice_in_the_outbox(phone, served, provider, deps):
    deps.pins.set_pin("+221770000001", PIN)
    p = phone("+221770000001")
    p.dial("3")
    p.answer("2")
    p.answer("7000")
    p.answer("1")
    assert p.answer("1") == f"CON Entrez votre code PIN (4 chiffres):\n{NAV}"
    payment_id = reference(p.answer(PIN))
    provider.decline(payment_id)
    failed = settled(deps, payment_id)
    assert (failed.status, failed.failure_reason) == ("failed", "declined_by_customer")
    [notice] = outbox(deps, 1)
    assert notice["kind"] == "payment_failed"
    assert notice["dedupe_key"] == f"payment:{payment_id}:failed"

    again = phone("+221770000001")
    # A declined payment holds nothing back: the whole balance may be paid again.
    assert again.dial("3").startswith("CON Payer - compte 1000001\nA payer: 12 500 FCFA\n")
    assert again.answer("3").startswith("CON Derniers paiements (choisissez):\n1. ")
    detail = again.answer("1")
    assert detail.startswith("CON Paiement échoué (refusé sur le téléphone), rien n'a été débité.\nLe ")
    assert detail.endswith(f"Montant: 7 000 FCFA\nRéf. {payment_id}\n{NAV}")
    assert "A payer: 12 500 FCFA" in phone("+221770000001").dial("1")


def pay_whole_balance(phone, deps, wallet: str = "1") -> UssdPhone:
    """+221770000001, PIN already chosen: dial Pay, choose the whole balance, a wallet (1 Orange Money),
    confirm; the PIN is next."""
    deps.pins.set_pin("+221770000001", PIN)
    p = phone("+221770000001")
    p.dial("3")
    p.answer("1")
    p.answer(wallet)
    p.answer("1")
    return p


def test_a_duplicate_callback_adds_no_second_receipt(phone, served, provider, deps):
    payment_id = reference(pay_whole_balance(phone, deps).answer(PIN))
    provider.approve(payment_id)
    paid = settled(deps, payment_id)
    wait_for(lambda: provider.delivered(payment_id) >= 1)
    provider.resend(payment_id)
    wait_for(lambda: provider.delivered(payment_id) >= 2)
    # The same event once more, by hand, to see the answer the provider gets.
    with provider.app.extensions["backoffice"].sessions() as db:
        event = db.get(PaymentIntent, payment_id).event_body.encode()
    again = requests.post(f"{served}/payments/callback", data=event, timeout=5, headers={
        "Content-Type": "application/json",
        "X-Payment-Signature": sign("test-callback-secret", event, int(time.time()))})
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert [e["kind"] for e in outbox(deps, 1)] == ["payment_receipt"]
    assert deps.ledger.by_provider_id(payment_id) == paid


def test_forged_unsigned_and_stale_callbacks_change_nothing(phone, served, provider, deps):
    payment_id = reference(pay_whole_balance(phone, deps).answer(PIN))
    body = (f'{{"event_id":"EVT-forged","payment_id":"{payment_id}","status":"succeeded",'
            '"reference":"MMFORGED000","token":null,"failure_reason":null}').encode()
    url = f"{served}/payments/callback"
    now = int(time.time())
    headers = {"Content-Type": "application/json"}
    unsigned = requests.post(url, data=body, headers=headers, timeout=5)
    forged = requests.post(url, data=body, timeout=5,
                           headers={**headers, "X-Payment-Signature": sign("guessed-secret", body, now)})
    stale = requests.post(url, data=body, timeout=5,
                          headers={**headers, "X-Payment-Signature": sign("test-callback-secret", body, now - 600)})
    assert (unsigned.status_code, forged.status_code, stale.status_code) == (401, 401, 403)
    assert unsigned.json()["error"] == "signature_missing"
    assert deps.ledger.by_provider_id(payment_id).status == "pending"
    assert outbox(deps) == []
    # Still being confirmed: no forged word settled it either way.
    assert phone("+221770000001").dial("1").startswith(
        "CON Compte 1000001\nReste à payer: 0 FCFA\nPaiement de 12 500 FCFA en cours de confirmation\n")


def test_three_wrong_pins_lock_and_a_new_session_is_still_locked(phone, provider, deps):
    deps.pins.set_pin("+221770000001", PIN)
    p = phone("+221770000001")
    p.dial("3")
    p.answer("1")
    p.answer("1")
    assert p.answer("1") == f"CON Entrez votre code PIN (4 chiffres):\n{NAV}"
    assert p.answer("1357") == f"CON Code PIN incorrect. Essais restants: 2. Code PIN:\n{NAV}"
    assert p.answer("135") == f"CON Le code PIN a 4 chiffres.\nEntrez votre code PIN:\n{NAV}"     # not a try: still 2 left
    assert p.answer("1357") == f"CON Code PIN incorrect. Essais restants: 1. Code PIN:\n{NAV}"
    assert p.answer("1357") == "END Code PIN bloqué après 3 erreurs. Réessayez dans 15 minutes."
    later = phone("+221770000001")
    later.dial("3")
    later.answer("1")
    later.answer("1")                # the wallet
    # Said before the PIN is asked.
    assert later.answer("1") == ("CON Code PIN bloqué après 3 erreurs. Réessayez dans 15 minutes.\n"
                                 f"1. Code PIN oublié\n{NAV}")
    assert provider.count() == 0
    assert deps.ledger.recent("+221770000001") == []


def _down(engine_db: str, redis_url: str) -> Flask:
    """The engine as it is when the back office has gone away."""
    return create_app(Settings(resume_window_seconds=0, database_url=engine_db, redis_url=redis_url,
                               backoffice_url=f"http://127.0.0.1:{closed_port()}",
                               backend_connect_timeout=0.5, backend_read_timeout=1.0,
                               payment_callback_secret="test-callback-secret"))


NOT_STARTED = ("END Le paiement n'a pas démarré. Rien n'a été débité. "
               "Merci de réessayer dans quelques minutes.")


def test_back_office_down_before_a_bill_payment_starts_nothing(phone, deps, engine_db, redis_url, provider):
    p = pay_whole_balance(phone, deps)
    # The back office goes away between the confirmation and the PIN: what is owed cannot be checked.
    p.client = _down(engine_db, redis_url).test_client()
    assert p.answer(PIN) == NOT_STARTED
    assert deps.ledger.recent("+221770000001") == []
    assert provider.count() == 0


def test_provider_down_at_initiation_is_told_politely_and_kept_as_not_started(phone, deps, engine_db, redis_url):
    deps.pins.set_pin("+221770000003", PIN)
    p = phone("+221770000003")
    p.dial("3")
    p.answer("1")
    p.answer("2000")
    p.answer("2")
    p.answer("1")
    p.client = _down(engine_db, redis_url).test_client()
    assert p.answer(PIN) == NOT_STARTED
    [kept] = deps.ledger.recent("+221770000003")
    # Never sent (nothing listens): not on its way, so it holds nothing back; the worker still asks by its key.
    assert (kept.status, kept.amount, kept.provider_payment_id, kept.wallet) == ("not_started", 2000, None, "wave")
    again = phone("+221770000003")
    again.dial("3")
    again.answer("2")
    assert again.answer("1").startswith("CON Paiement non lancé, rien n'a été débité.\nLe ")


def test_prepaid_purchase_shows_the_token_after_approval(phone, served, provider, deps):
    deps.pins.set_pin("+221770000003", PIN)
    p = phone("+221770000003")
    assert p.dial("3") == f"CON Compteur prépayé MTR-3000001\n1. Acheter du crédit\n2. Derniers paiements\n{NAV}"
    assert p.answer("1") == f"CON Montant du crédit à acheter (FCFA, de 100 à 2 000 000):\n{NAV}"
    assert p.answer("2000") == f"CON Payer 2 000 FCFA avec:\n{WALLETS}\n{NAV}"
    assert p.answer("2") == ("CON Acheter 2 000 FCFA de crédit pour le compteur MTR-3000001 avec Wave ?\n"
                             f"1. Confirmer\n2. Annuler\n{NAV}")
    p.answer("1")
    end = p.answer(PIN)
    payment_id = reference(end)
    assert end == ("END Validez l'achat de 2 000 FCFA sur votre téléphone (invite mobile money). "
                   f"Le code de 20 chiffres arrivera par SMS. Réf. {payment_id}")
    assert deps.ledger.by_provider_id(payment_id).purpose == "prepaid"
    provider.approve(payment_id)
    bought = settled(deps, payment_id)
    assert bought.token and len(bought.token) == 20
    [receipt] = outbox(deps, 1)
    assert receipt["payload"]["token"] == bought.token
    grouped = " ".join(bought.token[i:i + 4] for i in range(0, 20, 4))
    again = phone("+221770000003")
    again.dial("3")
    again.answer("2")
    detail = again.answer("1")
    assert re.fullmatch(r"CON Achat réussi le \d\d/\d\d \d\d:\d\d\nMontant: 2 000 FCFA\n"
                        rf"Code: {grouped}\nRéférence: {bought.reference}\n{NAV}", detail), detail


def test_a_token_the_provider_wrote_with_dashes_reads_in_groups_of_four_in_the_last_payments(phone, served, deps):
    deps.pins.set_pin("+221770000003", PIN)
    p = phone("+221770000003")
    p.dial("3")
    for answer in ("1", "2000", "2", "1"):
        p.answer(answer)
    payment_id = reference(p.answer(PIN))
    settle_provider_result(deps, ProviderResult(
        event_id="EV-dashes", payment_id=payment_id, status="succeeded", source="callback", amount=Decimal(2000),
        currency="XOF", account_number="3000001", msisdn="+221770000003", reference="MM-DASHES",
        token="4821-3907-5612-8473-0195", failure_reason=None))
    again = phone("+221770000003")
    again.dial("3")
    again.answer("2")
    assert re.fullmatch(r"CON Achat réussi le \d\d/\d\d \d\d:\d\d\nMontant: 2 000 FCFA\n"
                        rf"Code: 4821 3907 5612 8473 0195\nRéférence: MM-DASHES\n{NAV}", again.answer("1"))


def test_the_last_screen_says_where_the_token_or_receipt_will_come_when_sms_is_not_the_choice(
        phone, served, provider, deps, settings):
    # A customer who chose e-mail (or WhatsApp) for their messages gets the token there: the screen
    # must not send them looking for an SMS.
    deps.pins.set_pin("+221770000003", PIN)
    deps.contacts.stage_email("+221770000003", "moussa@exemple.sn", hash_code("123456"),
                              settings.clock() + timedelta(minutes=30))
    assert deps.contacts.confirm_email("+221770000003", "123456", settings.clock(), via="ussd",
                                       source="menu") == "ok"
    deps.contacts.set_channel("+221770000003", "email", via="ussd", source="menu")
    p = phone("+221770000003")
    p.dial("3")
    for answer in ("1", "2000", "2", "1"):
        p.answer(answer)
    end = p.answer(PIN)
    assert end == ("END Validez l'achat de 2 000 FCFA sur votre téléphone (invite mobile money). "
                   f"Le code de 20 chiffres arrivera par e-mail. Réf. {reference(end)}")
    deps.pins.set_pin("+221770000002", PIN)
    deps.contacts.set_channel("+221770000002", "whatsapp", via="ussd", source="menu")
    b = phone("+221770000002")
    b.dial()
    for answer in ("1", "3", "2", "1500", "2", "1"):
        b.answer(answer)
    end = b.answer(PIN)
    assert end == ("END Approve the payment of 1,500 FCFA on your phone (mobile money prompt). "
                   f"You will receive a receipt by WhatsApp. Ref. {reference(end)}")


def buy_2000_of_credit(phone, deps) -> str:
    """The prepaid customer (+221770000003) buys 2 000 FCFA of credit with Wave: the payment's reference,
    being confirmed."""
    deps.pins.set_pin("+221770000003", PIN)
    buyer = phone("+221770000003")
    buyer.dial("3")
    for answer in ("1", "2000", "2", "1"):
        buyer.answer(answer)
    return reference(buyer.answer(PIN))


def test_the_alert_payment_by_another_number_tells_whoever_switched_it_on_and_the_payer_has_the_receipt_only(
        phone, served, provider, deps, app, settings):
    # Sahel (English), linked to account 3000001, watches it from her number: preferences, alerts, 3.
    deps.links.link("+221770000002", "3000001", "self-service")
    deps.subscriptions.subscribe("+221770000002", "payment_received", "3000001", channel="sms", language="en")
    # The meter owner watches it too: paying himself, he gets his receipt, not a second message.
    deps.subscriptions.subscribe("+221770000003", "payment_received", "3000001", channel="sms", language="fr")
    payment_id = buy_2000_of_credit(phone, deps)
    provider.approve(payment_id)
    bought = settled(deps, payment_id)
    outbox(deps, 2)
    with fake_africastalking() as sms:
        worker = replace(settings, at_api_key=sms.api_key, at_username=sms.username, at_api_url=sms.url,
                         quiet_hours="")   # an alert, not urgent: it would wait for the morning
        assert build_dispatcher(worker, app.extensions["parts"]["db"]).run_once().sent == 2
        assert sms.messages_to("+221770000002") == [
            (f"ElecNet: a payment of 2,000 FCFA was received for account 3000001, made from a number other than "
             f"yours. Ref. {bought.reference}.")]
        [receipt] = sms.messages_to("+221770000003")
        assert receipt.startswith("ElecNet: achat de 2 000 FCFA, compteur du compte 3000001. Code à saisir")
    # Switched off, it says nothing of the next payment.
    deps.subscriptions.unsubscribe("+221770000002", "payment_received", "3000001")
    again = buy_2000_of_credit(phone, deps)
    provider.approve(again)
    settled(deps, again)
    assert [e["kind"] for e in outbox(deps, 1)] == ["payment_receipt"]


def test_a_number_unlinked_from_the_account_hears_of_no_payment_to_it_though_it_had_switched_the_alert_on(
        phone, served, provider, deps):
    # A stranger linked his number to account 3000001 and switched on "payment by another number"; the holder
    # then removed the link (preferences, linked numbers). His subscription stays in the table, not his right.
    deps.links.link("+221770000009", "3000001", "self-service")
    deps.subscriptions.subscribe("+221770000009", "payment_received", "3000001", channel="sms", language="fr")
    deps.links.unlink("+221770000009", "3000001")
    # A number never linked to it that subscribed all the same (a stale row, an old account) hears nothing either.
    deps.subscriptions.subscribe("+221770000008", "payment_received", "3000001", channel="sms", language="fr")
    # Sahel, still linked, hears of it: the alerts are queued after the others were looked at.
    deps.links.link("+221770000002", "3000001", "self-service")
    deps.subscriptions.subscribe("+221770000002", "payment_received", "3000001", channel="sms", language="en")
    payment_id = buy_2000_of_credit(phone, deps)
    provider.approve(payment_id)
    settled(deps, payment_id)
    wait_for(lambda: any(e["msisdn"] == "+221770000002" for e in outbox(deps)))
    assert [(e["kind"], e["msisdn"]) for e in outbox(deps)] == [("payment_receipt", "+221770000003"),
                                                                ("payment_received", "+221770000002")]


def test_a_prepaid_token_is_sealed_in_the_outbox_yet_reaches_the_meter_owner_and_stays_in_the_last_payments(
        phone, served, provider, deps, app, settings, caplog):
    caplog.set_level(logging.DEBUG)
    payment_id = buy_2000_of_credit(phone, deps)
    provider.approve(payment_id)
    bought = settled(deps, payment_id)
    token = bought.token
    outbox(deps, 1)
    grouped = " ".join(token[i:i + 4] for i in range(0, 20, 4))
    # Whoever reads the database (a DBA, a backup) cannot top up a meter with it.
    queued = raw_rows(settings.database_url)
    assert token not in queued and '"sealed": ["token"]' in queued
    with fake_africastalking() as sms:
        worker = replace(settings, at_api_key=sms.api_key, at_username=sms.username, at_api_url=sms.url)
        assert build_dispatcher(worker, app.extensions["parts"]["db"]).run_once().sent == 1
        assert sms.messages_to("+221770000003") == [
            (f"ElecNet: achat de 2 000 FCFA, compteur du compte 3000001. Code à saisir au compteur: {grouped}. "
             f"Réf. {bought.reference}.")]
    assert token not in raw_rows(settings.database_url) and grouped not in raw_rows(settings.database_url)   # erased
    assert not [r.getMessage() for r in caplog.records if token in r.getMessage() or grouped in r.getMessage()]
    # The customer who lost the SMS reads the token again where the product keeps it for them.
    again = phone("+221770000003")
    again.dial("3")
    again.answer("2")
    assert f"Code: {grouped}" in again.answer("1")


def test_a_replayed_hop_does_not_initiate_twice(phone, served, provider, deps):
    p = pay_whole_balance(phone, deps)
    end = p.answer(PIN)
    assert p.post("*".join(p.inputs)) == end     # the gateway sends the same hop again
    assert provider.count() == 1
    assert len(deps.ledger.recent("+221770000001")) == 1


# ---------------------------------------------------------------- the wallet, and why a payment is refused
@pytest.mark.parametrize(("wallet", "why"), [
    ("2", "solde mobile money insuffisant"),           # Wave holds 5 000
    ("3", "pas de compte chez cet opérateur"),          # no Free Money wallet for this number
])
def test_the_operator_refusing_says_why_and_nothing_starts(phone, provider, deps, wallet, why):
    p = pay_whole_balance(phone, deps, wallet=wallet)
    assert p.answer(PIN) == (f"END Paiement refusé: {why}. Rien n'a été débité. Service client: 800 00 00.")
    assert provider.count() == 0
    [refused] = deps.ledger.recent("+221770000001")
    assert (refused.status, refused.wallet, refused.provider_payment_id) == ("failed", {"2": "wave", "3": "free_money"}[wallet], None)
    again = phone("+221770000001")
    again.dial("3")
    again.answer("3")
    detail = again.answer("1")
    assert detail.startswith(f"CON Paiement échoué ({why}), rien n'a été débité.\nLe ")
    assert detail.endswith(f"Montant: 12 500 FCFA\nRéf. -\n{NAV}")


def test_a_purchase_above_the_operators_limit_is_refused_with_the_reason(phone, provider, deps):
    deps.pins.set_pin("+221770000003", PIN)
    p = phone("+221770000003")
    p.dial("3")
    p.answer("1")
    assert p.answer("300000") == f"CON Payer 300 000 FCFA avec:\n{WALLETS}\n{NAV}"
    p.answer("1")                                       # Orange Money: 200 000 at most per payment
    p.answer("1")
    assert p.answer(PIN) == ("END Paiement refusé: montant au-dessus du plafond de l'opérateur. "
                             "Rien n'a été débité. Service client: 800 00 00.")
    assert provider.count() == 0


def test_the_chosen_wallet_is_the_one_the_provider_debits(phone, served, provider, deps, backoffice_app):
    from backoffice.models import MobileWallet
    p = pay_whole_balance(phone, deps, wallet="1")
    payment_id = reference(p.answer(PIN))
    provider.approve(payment_id)
    assert settled(deps, payment_id).status == "succeeded"
    with backoffice_app.extensions["backoffice"].sessions() as db:
        orange = db.get(MobileWallet, ("orange_money", "+221770000001"))
        wave = db.get(MobileWallet, ("wave", "+221770000001"))
        assert (orange.balance, wave.balance) == (50_000 - 12_500, 5_000)


# ---------------------------------------------------------------- boundaries of the amount
def test_typing_exactly_the_balance_is_accepted(phone, served, provider, deps):
    deps.pins.set_pin("+221770000001", PIN)
    p = phone("+221770000001")
    p.dial("3")
    p.answer("2")
    assert p.answer("12500") == f"CON Payer 12 500 FCFA avec:\n{WALLETS}\n{NAV}"
    assert p.answer("1").startswith("CON Payer 12 500 FCFA sur le compte 1000001 avec Orange Money ?")
    p.answer("1")
    payment_id = reference(p.answer(PIN))
    assert deps.ledger.by_provider_id(payment_id).amount == 12500
    assert p.inputs[-4:] == ["12500", "1", "1", PIN]


def test_one_franc_above_the_balance_is_refused(phone, provider):
    p = phone("+221770000001")
    p.dial("3")
    p.answer("2")
    assert p.answer("12501").startswith("CON Montant refusé: il dépasse les 12 500 FCFA à payer.")


def pay_elsewhere(provider: Provider, amount: int) -> None:
    """The customer pays part of the balance by another channel (an agency counter, another phone)."""
    answer = requests.post(f"{provider.url}/api/v1/payments", timeout=5,
                           headers={"Idempotency-Key": f"elsewhere-{amount}"},
                           json={"account_number": "1000001", "msisdn": "+221770000001", "amount": str(amount),
                                 "purpose": "bill"})
    assert answer.status_code == 202, answer.text
    provider.approve(answer.json()["payment_id"])


def test_a_balance_that_changes_after_the_menu_is_read_again(phone, provider, deps):
    p = phone("+221770000001")
    assert p.dial("3").startswith("CON Payer - compte 1000001\nA payer: 12 500 FCFA\n")
    pay_elsewhere(provider, 7000)
    assert p.answer("1") == f"CON Payer 5 500 FCFA avec:\n{WALLETS}\n{NAV}"


def test_a_balance_that_drops_between_confirmation_and_pin_starts_no_payment(phone, provider, deps):
    p = pay_whole_balance(phone, deps)                  # confirmed 12 500
    pay_elsewhere(provider, 7000)                       # now 5 500 is owed
    assert p.answer(PIN) == ("CON Montant refusé: il dépasse les 5 500 FCFA à payer.\n1. Autre montant\n"
                             f"2. Payer tout le solde\n{NAV}")
    assert provider.count() == 1                        # only the payment made elsewhere
    assert deps.ledger.recent("+221770000001") == []


# ---------------------------------------------------------------- the same payment, never twice
def test_a_replayed_pin_hop_after_the_session_record_is_lost_starts_no_second_payment(phone, served, provider,
                                                                                       deps, redis_url):
    import redis as redis_lib
    p = pay_whole_balance(phone, deps)
    end = p.answer(PIN)
    payment_id = reference(end)
    # Redis loses the session (eviction, failover); the gateway, which got no answer, sends the hop again.
    client = redis_lib.Redis.from_url(redis_url)
    lost = [k for k in client.scan_iter(match=f"*{p.session_id}*")]
    assert lost
    client.delete(*lost)
    # The whole path is walked again from the text; the same payment comes back, not a new one.
    assert p.post("*".join(p.inputs)) == end
    assert provider.count() == 1
    [only] = deps.ledger.recent("+221770000001")
    assert only.provider_payment_id == payment_id


def test_in_english_a_refusal_says_why_too(phone, provider, deps):
    deps.pins.set_pin("+221770000002", PIN)
    p = phone("+221770000002")
    p.dial()
    p.answer("1")                                       # account 2000001
    balance = re.search(r"Balance due: ([\d,]+) FCFA", p.answer("3"))
    assert balance and int(balance.group(1).replace(",", "")) > 100_000
    assert p.answer("1") == f"CON Pay {balance.group(1)} FCFA with:\n{WALLETS_EN}\n{NAV_EN}"
    assert p.answer("3").startswith(f"CON Pay {balance.group(1)} FCFA to account 2000001 with Free Money?")
    p.answer("1")
    assert p.answer(PIN) == ("END Payment refused: not enough money in the wallet. Nothing was charged. "
                             "Customer service: 800 00 00.")
    assert provider.count() == 0


def pay_5000_of_1000001(phone, deps) -> str:
    """The French customer (+221770000001) pays 5 000 FCFA of account 1000001's 12 500 by mobile money: the
    payment's reference, being confirmed."""
    deps.pins.set_pin("+221770000001", PIN)
    payer = phone("+221770000001")
    payer.dial("3")
    payer.answer("2")
    payer.answer("5000")
    payer.answer("1")
    payer.answer("1")
    return reference(payer.answer(PIN))


def test_the_balance_says_a_payment_is_being_confirmed_until_the_operator_settles_it(phone, served, provider, deps):
    # The back office counts a payment only once approved: until then the balance screen says it is on its way.
    waiting = pay_5000_of_1000001(phone, deps)

    again = phone("+221770000001")
    assert again.dial("1") == ("CON Compte 1000001\nReste à payer: 7 500 FCFA\n"
                               "Paiement de 5 000 FCFA en cours de confirmation\nFactures impayées: 2\n"
                               f"1. Dernières factures\n{NAV}")
    provider.approve(waiting)
    assert settled(deps, waiting).status == "succeeded"
    assert phone("+221770000001").dial("1") == ("CON Compte 1000001\nA payer: 7 500 FCFA\nFactures impayées: 2\n"
                                                f"1. Dernières factures\n{NAV}")


def test_after_a_payment_starts_the_balance_and_the_pay_menu_say_the_same_until_it_is_confirmed(
        phone, served, provider, deps):
    waiting = pay_5000_of_1000001(phone, deps)          # 5 000 FCFA on its way, not yet confirmed

    again = phone("+221770000001")
    assert again.dial("1") == ("CON Compte 1000001\nReste à payer: 7 500 FCFA\n"
                               "Paiement de 5 000 FCFA en cours de confirmation\nFactures impayées: 2\n"
                               f"1. Dernières factures\n{NAV}")
    assert again.answer("00") == HOME_FR
    assert again.answer("3") == ("CON Compte 1000001\nReste à payer: 7 500 FCFA\n5 000 FCFA en confirmation\n"
                                 "1. Payer tout le reste\n2. Payer un autre montant\n3. Derniers paiements\n"
                                 f"{NAV}")
    assert again.answer("1") == f"CON Payer 7 500 FCFA avec:\n{WALLETS}\n{NAV}"
    provider.approve(waiting)
    assert settled(deps, waiting).status == "succeeded"


def pay_1500_to_2000001(phone, deps) -> str:
    """The English customer with several accounts (+221770000002) pays 1 500 FCFA to account 2000001 by mobile money:
    the payment's reference, being confirmed."""
    deps.pins.set_pin("+221770000002", PIN)
    payer = phone("+221770000002")
    payer.dial()
    payer.answer("1")                                   # account 2000001
    payer.answer("3")
    payer.answer("2")
    payer.answer("1500")
    payer.answer("2")
    payer.answer("1")
    return reference(payer.answer(PIN))


def test_a_declined_payment_is_no_longer_said_on_the_english_balance(phone, served, provider, deps):
    waiting = pay_1500_to_2000001(phone, deps)

    again = phone("+221770000002")
    again.dial()
    again.answer("1")
    shown = again.answer("1")
    due = re.search(r"Still to pay: ([\d,]+) FCFA", shown)
    assert due, shown
    assert shown == (f"CON Account 2000001\nStill to pay: {due.group(1)} FCFA\n"
                     "Payment of 1,500 FCFA being confirmed\nUnpaid bills: 1\n"
                     f"1. Latest bills\n{NAV_EN}")
    provider.decline(waiting)
    assert settled(deps, waiting).status == "failed"
    after = phone("+221770000002")
    after.dial()
    after.answer("1")
    balance = int(due.group(1).replace(",", "")) + 1500     # declined: all of it is owed again
    assert after.answer("1") == (f"CON Account 2000001\nBalance due: {balance:,} FCFA\nUnpaid bills: 1\n"
                                 f"1. Latest bills\n{NAV_EN}")


def test_last_payments_under_one_account_list_only_that_accounts(phone, served, provider, deps):
    paid = pay_1500_to_2000001(phone, deps)
    provider.approve(paid)
    assert settled(deps, paid).status == "succeeded"

    other = phone("+221770000002")
    other.dial()
    other.answer("3")                                   # account 2000003: nothing paid to it
    other.answer("3")
    assert other.answer("3") == f"CON No payment to account 2000003 made from this number yet.\n{NAV_EN}"

    same = phone("+221770000002")
    same.dial()
    same.answer("1")
    same.answer("3")
    listing = same.answer("3")
    assert re.fullmatch(r"CON Last payments \(choose one\):\n1\. \d\d/\d\d/\d{4} 1,500 FCFA paid\n" + NAV_EN,
                        listing), listing
    assert same.answer("1").startswith("CON Payment succeeded on ")


def test_a_prepaid_purchase_being_confirmed_is_said_on_the_balance_until_the_operator_settles_it(
        phone, served, provider, deps):
    # The token comes only once mobile money confirms: until then the prepaid balance says the purchase is
    # on its way, in French and in English, instead of showing the old purchase as if nothing had happened.
    waiting = buy_2000_of_credit(phone, deps)

    fr = phone("+221770000003").dial("1")
    assert re.fullmatch(r"CON Prépayé 3000001\nCrédit: [\d ,]+ kWh\n"
                        r"Achat de 2 000 FCFA en cours de confirmation, le code arrivera par message\n"
                        rf"Environ \d+ jours de crédit\n{NAV}", fr), fr
    english = phone("+221770000003")
    english.dial("8")
    english.answer("1")
    english.answer("2")                                 # English
    en = phone("+221770000003").dial("1")
    assert re.fullmatch(r"CON Prepaid meter 3000001\nCredit: [\d,.]+ kWh\n"
                        r"Purchase of 2,000 FCFA being confirmed, the token will come by message\n"
                        rf"About \d+ days of credit\n{NAV_EN}", en), en
    assert len(fr) - len("CON ") <= 182 and len(en) - len("CON ") <= 182

    provider.approve(waiting)
    assert settled(deps, waiting).status == "succeeded"
    after = phone("+221770000003").dial("1")
    assert "being confirmed" not in after and "\nBought " in after and "\nToken: " in after, after


def test_the_pay_menu_of_a_prepaid_meter_says_a_purchase_is_being_confirmed(phone, served, provider, deps):
    # Before buying again, the customer sees the purchase on its way, in French and in English.
    waiting = buy_2000_of_credit(phone, deps)
    fr = phone("+221770000003").dial("3")
    assert fr == ("CON Compteur prépayé MTR-3000001\nAchat de 2 000 FCFA en cours de confirmation, le code arrivera "
                  f"par message\n1. Acheter du crédit\n2. Derniers paiements\n{NAV}")
    english = phone("+221770000003")
    english.dial("8")
    english.answer("1")
    english.answer("2")                                 # English
    en = phone("+221770000003").dial("3")
    assert en == ("CON Prepaid meter MTR-3000001\nPurchase of 2,000 FCFA being confirmed, the token will come by "
                  f"message\n1. Buy credit\n2. Last payments\n{NAV_EN}")
    assert len(fr) - len("CON ") <= 182 and len(en) - len("CON ") <= 182
    provider.approve(waiting)
    assert settled(deps, waiting).status == "succeeded"
    assert phone("+221770000003").dial("3").startswith("CON Prepaid meter MTR-3000001\n1. Buy credit\n")


def test_buying_the_same_amount_again_while_the_first_is_confirmed_asks_first(phone, served, provider, deps):
    first = buy_2000_of_credit(phone, deps)
    p = phone("+221770000003")
    p.dial("3")
    p.answer("1")
    assert p.answer("2000") == ("CON Vous avez déjà un achat de 2 000 FCFA en cours de confirmation. "
                                f"Acheter encore ?\n1. Oui\n2. Non\n{NAV}")
    assert p.answer("2") == ("END Rien de plus n'est acheté. Le code de l'achat en cours arrivera par message.")
    assert [x.status for x in deps.ledger.recent("+221770000003")] == ["pending"]
    # Yes, on purpose: the second purchase goes as usual.
    again = phone("+221770000003")
    again.dial("3")
    again.answer("1")
    again.answer("2000")
    assert again.answer("1") == f"CON Payer 2 000 FCFA avec:\n{WALLETS}\n{NAV}"
    again.answer("2")
    again.answer("1")
    second = reference(again.answer(PIN))
    assert second != first and len(deps.ledger.recent("+221770000003")) == 2
    # Another amount is not asked about.
    other = phone("+221770000003")
    other.dial("3")
    other.answer("1")
    assert other.answer("5000") == f"CON Payer 5 000 FCFA avec:\n{WALLETS}\n{NAV}"
