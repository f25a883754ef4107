"""Our database fails at the worst moment of a payment: just after the provider started it (the PIN prompt is on
the customer's phone), when the ledger writes the provider's payment id. The customer is told the truth (the
payment is started, approve it, with its reference), the failure is logged at ERROR (masked) and audited, and
nothing is lost: the provider's callback finds the payment by the idempotency key it echoes and credits it once;
a callback that comes while our database is still failing is answered 503, so the provider sends it again; and a
payment whose callback never comes is found by the worker, asking the provider by our key.

The failure is real: another session holds the ledger (PostgreSQL: the payment's row, ``FOR UPDATE``; SQLite:
the file's write lock), taken the moment the provider receives the request, so the ledger's write waits for its
lock and gives up (PostgreSQL's ``lock_timeout``, SQLite's busy timeout). The engine and the back office are
served on loopback ports; the back office approves by hand and calls the engine back over HTTP.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, create_engine, text

from app.factory import build_deps, create_app
from app.ops import Metrics
from app.settings import Settings
from app.storage import make_sessions, migrate
from app.worker import reconcile_payments, run_once
from backoffice.models import PaymentIntent
from tests.channels.test_ussd_payments import HOME_FR, NAV, PIN, Provider, reference, wait_for
from tests.support.engine import UssdPhone
from tests.support.ports import closed_port
from tests.support.services import serve_wsgi
from tests.web_fallback.agents.conftest import sign_in

AWA = "+221770000001"
AWAITING = ("CON Compte 1000001: votre paiement de 12 500 FCFA est en cours de confirmation. "
            "Rien d'autre à payer pour l'instant.\n3. Derniers paiements\n0. Retour 00. Accueil")
AFTER = 300
STARTED = ("END Validez le paiement de 5 000 FCFA sur votre téléphone (invite mobile money). "
           "Vous recevrez une confirmation par SMS. Réf. ")


class LedgerLock:
    """Another session holding the product's ledger: on PostgreSQL the payments not yet started (``FOR
    UPDATE``: reads go on, their writes wait), on SQLite the file's write lock (``BEGIN IMMEDIATE``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Connection | None = None

    def take(self) -> None:
        if self.url.startswith("sqlite:///"):
            path = self.url.removeprefix("sqlite:///").split("?", 1)[0]
            self._sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._sqlite.execute("BEGIN IMMEDIATE")
        else:
            self._pg = create_engine(self.url).connect()
            self._pg.execute(text("SELECT id FROM payment_intents WHERE status = 'created' FOR UPDATE"))

    def release(self) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            self._pg.rollback()
            self._pg.engine.dispose()
            self._pg.close()
            self._pg = None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, engine_db: str) -> str:
    if request.param == "sqlite":
        return f"{engine_db}?timeout=0.5"   # the busy wait before "database is locked": short for the test
    url: str = request.getfixturevalue("postgres_url")
    migrate(url)
    return url


@pytest.fixture
def settings(settings: Settings, database_url: str, engine_port: int) -> Settings:
    """The suite's settings on the parametrised database, with the public URL the back office calls back on;
    short lock waits (the defaults, 5 s and 3 s, are checked in tests/app/test_database_timeouts.py)."""
    return replace(settings, database_url=database_url, public_base_url=f"http://127.0.0.1:{engine_port}",
                   database_statement_timeout_seconds=2.0, database_lock_timeout_seconds=1.0,
                   payment_status_after_seconds=AFTER)


@pytest.fixture
def app(settings: Settings) -> Flask:
    made = create_app(settings)
    made.extensions["parts"]["deps"].pins.set_pin(AWA, PIN)
    return made


@pytest.fixture
def deps(app: Flask) -> Any:
    return app.extensions["parts"]["deps"]


@pytest.fixture
def lock(database_url: str) -> Iterator[LedgerLock]:
    held = LedgerLock(database_url)
    yield held
    held.release()


@pytest.fixture
def provider(backoffice_url: str, backoffice_app: Flask) -> Provider:
    return Provider(backoffice_url, backoffice_app)


@pytest.fixture
def locked_when_started(backoffice_app: Flask, lock: LedgerLock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger is taken by another session the moment the provider receives the payment to start: after our
    row is written ("created"), before the provider's id is."""
    served = backoffice_app.wsgi_app

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/api/v1/payments":
            lock.take()
        return served(environ, start_response)

    monkeypatch.setattr(backoffice_app, "wsgi_app", wsgi)


def pay_5000(app: Flask) -> str:
    """Awa pays another amount, 5 000 FCFA, with Orange Money, and types her PIN: the last screen."""
    p = UssdPhone(app.test_client(), AWA)
    p.dial("3")
    p.answer("2")
    p.answer("5000")
    return pin_for(p)


def pay_all(app: Flask) -> str:
    """Awa pays all her balance with Orange Money, and types her PIN: the last screen."""
    p = UssdPhone(app.test_client(), AWA)
    p.dial("3")
    p.answer("1")
    return pin_for(p)


def pin_for(p: UssdPhone) -> str:
    """Orange Money chosen, the payment confirmed, the PIN typed: the last screen."""
    p.answer("1")
    assert p.answer("1") == "CON Entrez votre code PIN (4 chiffres):\n0. Retour 00. Accueil"
    return p.answer(PIN)


def on_record(url: str) -> list[tuple[str, str | None]]:
    engine = create_engine(url.split("?timeout=", 1)[0])
    try:
        with engine.connect() as conn:
            return [(status, provider_id) for status, provider_id in
                    conn.execute(text("select status, provider_payment_id from payment_intents")).all()]
    finally:
        engine.dispose()


def payment_sms(deps: Any) -> list[dict[str, Any]]:
    return [e for e in deps.outbox.pending() if e["kind"].startswith("payment_")]


def callback_tries(backoffice_app: Flask, payment_id: str) -> tuple[int, bool]:
    """How many times the provider tried to call us back, and whether we took it (2xx)."""
    with backoffice_app.extensions["backoffice"].sessions() as db:
        intent = db.get(PaymentIntent, payment_id)
        return int(intent.callback_attempts), intent.callback_delivered_at is not None


def test_the_customer_is_told_the_payment_started_and_its_callback_credits_it_once(
        app, deps, served_engine, locked_when_started, lock, provider, backoffice_app, database_url, caplog):
    caplog.set_level(logging.INFO)
    end = pay_5000(app)
    lock.release()
    payment_id = reference(end)
    assert end == STARTED + payment_id            # not "service unavailable": the prompt is on her phone
    assert provider.count() == 1
    assert on_record(database_url) == [("created", None)]   # the provider's id could not be written

    [error] = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "dialogs.payments"]
    # Masked: neither her number nor her account in full.
    # (The log's own filter may star a long run of digits in the payment id too.)
    assert re.fullmatch(r"payment started but its id not recorded user=\+2217\*{5}001 account=1\*{3}001 "
                        r"payment=PAY-[0-9A-F*]{16}: OperationalError; the callback or the worker finds it by its key",
                        error.getMessage()), error.getMessage()
    [audited] = [r.getMessage() for r in caplog.records if r.name == "security"
                 and r.getMessage().startswith("security event payment_unrecorded")]
    assert audited == ("security event payment_unrecorded channel=ussd subject=+2217*****001 account=1***001 "
                       "provider started it; ledger write failed")
    if database_url.startswith("postgresql"):     # the row lock left the audit table writable: it is stored
        [event] = [e for e in deps.security.for_account("1000001") if e.kind == "payment_unrecorded"]
        assert (event.channel, event.extra) == ("ussd", {"payment_id": payment_id})

    provider.approve(payment_id)
    wait_for(lambda: payment_sms(deps))
    assert on_record(database_url) == [("succeeded", payment_id)]
    [receipt] = payment_sms(deps)
    assert (receipt["kind"], receipt["msisdn"], receipt["payload"]["amount"]) == ("payment_receipt", AWA, "5000")

    provider.resend(payment_id)                    # the same event again: credited once
    wait_for(lambda: callback_tries(backoffice_app, payment_id)[0] >= 2)
    assert len(payment_sms(deps)) == 1 and on_record(database_url) == [("succeeded", payment_id)]

    again = UssdPhone(app.test_client(), AWA)
    again.dial("3")
    again.answer("3")
    assert again.answer("1").startswith("CON Paiement réussi le ")


def test_a_callback_while_our_database_still_fails_is_refused_503_and_the_providers_retry_credits_it(
        app, deps, served_engine, locked_when_started, lock, provider, backoffice_app, database_url, caplog):
    caplog.set_level(logging.INFO)
    payment_id = reference(pay_5000(app))
    provider.approve(payment_id)                   # the ledger is still held: the callback cannot be recorded
    wait_for(lambda: callback_tries(backoffice_app, payment_id)[0] >= 1)
    assert callback_tries(backoffice_app, payment_id) == (1, False)
    assert "callback try 1 to " in caplog.text and "/payments/callback answered 503" in caplog.text
    assert payment_sms(deps) == []
    lock.release()

    wait_for(lambda: callback_tries(backoffice_app, payment_id)[1], timeout=15)
    assert callback_tries(backoffice_app, payment_id)[0] >= 2
    assert on_record(database_url) == [("succeeded", payment_id)]
    [receipt] = payment_sms(deps)
    assert receipt["kind"] == "payment_receipt" and receipt["payload"]["payment_id"] == payment_id


def today() -> str:
    return datetime.now(UTC).strftime("%d/%m/%Y")


def later(seconds: float) -> Callable[[], datetime]:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return lambda: at


def test_a_payment_whose_id_was_never_recorded_nor_called_back_is_found_by_the_worker(
        app, deps, settings, locked_when_started, lock, provider, database_url):
    # No engine listens on the public URL: the provider's callbacks never arrive.
    payment_id = reference(pay_5000(app))
    lock.release()
    provider.approve(payment_id)
    assert on_record(database_url) == [("created", None)]

    assert run_once(settings, clock=later(AFTER - 30)) == {"tickets_sent": 0}     # not due yet
    done = run_once(settings, clock=later(AFTER + 1))
    assert (done["payments_recorded"], done["payments_settled"]) == (1, 1)
    assert on_record(database_url) == [("succeeded", payment_id)]
    [receipt] = payment_sms(deps)
    assert receipt["kind"] == "payment_receipt" and receipt["payload"]["payment_id"] == payment_id
    assert run_once(settings, clock=later(3 * AFTER)) == {"tickets_sent": 0}      # settled once


@pytest.fixture
def served_engine(app: Flask, engine_port: int) -> Iterator[str]:
    """The engine on its public port, so the provider's callbacks reach it."""
    with serve_wsgi(app, engine_port) as url:
        yield url


def test_paying_again_while_the_first_payment_is_unrecorded_is_told_it_is_on_its_way(
        app, deps, settings, locked_when_started, lock, provider, database_url):
    payment_id = reference(pay_all(app))
    lock.release()
    assert on_record(database_url) == [("created", None)]       # the provider started it; we hold no id

    again = UssdPhone(app.test_client(), AWA)
    assert again.dial("3") == AWAITING                         # not "1. Payer tout": she cannot pay it twice
    # Her last payments say it waits for her approval, not that nothing was charged.
    assert again.answer("3") == f"CON Derniers paiements (choisissez):\n1. {today()} 12 500 FCFA en attente\n{NAV}"
    again = UssdPhone(app.test_client(), AWA)
    assert again.dial("1") == ("CON Compte 1000001\nReste à payer: 0 FCFA\n"
                               "Paiement de 12 500 FCFA en cours de confirmation\nFactures impayées: 2\n"
                               f"1. Dernières factures\n{NAV}")
    assert again.answer("00") == HOME_FR
    assert again.answer("3") == AWAITING

    provider.approve(payment_id)            # no callback reaches us (nothing serves the engine): the worker asks
    done = run_once(settings, clock=later(AFTER + 1))
    assert (done["payments_recorded"], done["payments_settled"]) == (1, 1)
    paid = UssdPhone(app.test_client(), AWA)
    assert paid.dial("1").startswith("CON Compte 1000001\nA payer: 0 FCFA\n")
    assert paid.answer("00") == HOME_FR
    assert paid.answer("3") == f"CON Compte 1000001: rien à payer, votre solde est de 0 FCFA.\n3. Derniers paiements\n{NAV}"


def test_a_payment_recorded_as_created_that_the_provider_never_got_stops_holding_the_balance(
        app, deps, settings, provider, database_url):
    # Our row written, then the process died before asking the provider: "created", on its way for now.
    deps.ledger.create(idempotency_key="pay-crashed", msisdn=AWA, account_number="1000001", purpose="bill",
                       amount=Decimal(12500), wallet="orange_money")
    assert UssdPhone(app.test_client(), AWA).dial("3") == AWAITING
    done = run_once(settings, clock=later(AFTER + 1))      # the back office, asked by our key: no such payment
    assert done["payments_never_started"] == 1
    assert on_record(database_url) == [("not_started", None)]
    assert UssdPhone(app.test_client(), AWA).dial("3") == (
        "CON Payer - compte 1000001\nA payer: 12 500 FCFA\n1. Payer tout le solde\n2. Payer un autre montant\n"
        f"3. Derniers paiements\n{NAV}")
    assert provider.count() == 0


def to_resolve(agents: Flask) -> str:
    """The agents' console's section of payments to resolve on Awa's page, up to the next heading."""
    agent = agents.test_client()
    token = sign_in(agent, "Fatou", "agent")
    page = agent.post("/console/lookup", data={"kind": "phone", "q": AWA, "csrf_token": token},
                      follow_redirects=True).get_data(as_text=True)
    start = page.index("<h3>Payments to resolve</h3>")
    return page[start:page.index("<h3>", start + 4)]


def test_a_payment_the_provider_cannot_be_asked_about_for_long_is_given_up_audited_counted_and_listed(
        app, deps, settings, served_engine, locked_when_started, lock, provider, database_url, tmp_path):
    payment_id = reference(pay_all(app))
    lock.release()
    # The worker cannot reach the provider: asked by our key after 5, 10, 20, 40 minutes, given up past an hour.
    down = replace(settings, backoffice_url=f"http://127.0.0.1:{closed_port()}",
                   payment_unrecorded_give_up_seconds=3600)
    worker_deps, metrics = build_deps(down, make_sessions(down.database_url)), Metrics()
    for minutes in (5, 10, 20, 40):
        assert not any(reconcile_payments(worker_deps, down, later(minutes * 60 + 1)(), metrics).values())
    assert on_record(database_url) == [("created", None)]
    assert metrics.registry.get_sample_value("payments_unresolved_total") == 0
    assert reconcile_payments(worker_deps, down, later(80 * 60 + 1)(), metrics)["unresolved"] == 1

    assert on_record(database_url) == [("unresolved", None)]
    assert metrics.registry.get_sample_value("payments_unresolved_total") == 1
    [event] = [e for e in deps.security.for_account("1000001") if e.kind == "payment_unresolved"]
    assert (event.channel, event.extra) == ("worker", {"amount": "12500", "purpose": "bill"})
    agents = create_app(replace(settings, agents_dev_signin=True, secret_key="agents-test-secret",
                                simulator_database_url=f"sqlite:///{tmp_path / 'simulator.db'}"))
    listed = to_resolve(agents)
    assert "1000001" in listed and "12500 XOF" in listed and "orange_money" in listed
    # Still on its way for the customer: the wallet may be debited.
    assert UssdPhone(app.test_client(), AWA).dial("3") == AWAITING
    # Not asked again, nor counted twice.
    assert not any(reconcile_payments(worker_deps, down, later(3 * 3600)(), metrics).values())
    assert metrics.registry.get_sample_value("payments_unresolved_total") == 1

    provider.approve(payment_id)            # the provider's word, by our key, still settles it: nothing lost
    wait_for(lambda: payment_sms(deps))
    assert on_record(database_url) == [("succeeded", payment_id)]
    assert "None." in to_resolve(agents)
