"""The product's PostgreSQL hangs in the middle of a customer's hop: a table locked by another session (a long
transaction, a migration), or a server that stops answering on an open connection. The hop is answered within
the gateway's patience with "service unavailable, try again", never held for ever nor a 500; nothing is started
that is not on record, and once the database is back the customer pays, once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlparse, urlunparse

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from app.factory import create_app
from app.settings import Settings
from app.storage import migrate
from app.storage.answer_bound import SILENCE_SECONDS
from backoffice.models import PaymentIntent
from tests.support.engine import UssdPhone
from tests.support.tcp_proxy import FreezingProxy, freezing_proxy

PIN = "2468"
UNAVAILABLE = "END Service momentanément indisponible. Merci de réessayer plus tard."
# Gateways give up on an answer after 10-15 s (PROVIDERS.md, "other aggregators 5-10 s"): the hop comes within.
GATEWAY_PATIENCE_AT_LEAST = 10.0


def payments_started(backoffice_app: Flask) -> int:
    with backoffice_app.extensions["backoffice"].sessions() as db:
        return int(db.scalar(select(func.count()).select_from(PaymentIntent)
                             .where(PaymentIntent.idempotency_key.not_like("seed-%"))) or 0)


def on_record(url: str) -> list[tuple[str, int]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [(status, int(amount)) for status, amount in
                    conn.execute(text("select status, amount from payment_intents")).all()]
    finally:
        engine.dispose()


def to_confirmation(p: UssdPhone) -> None:
    """Pay another amount, 5 000 FCFA with Orange Money: up to the PIN that starts it."""
    p.dial("3")
    p.answer("2")
    p.answer("5000")
    p.answer("1")
    assert p.answer("1") == "CON Entrez votre code PIN (4 chiffres):\n0. Retour 00. Accueil"


def timed(p: UssdPhone, value: str) -> tuple[str, float]:
    started = time.monotonic()
    screen = p.answer(value)
    return screen, time.monotonic() - started


@pytest.fixture
def pg_settings(settings: Settings, postgres_url: str) -> Settings:
    migrate(postgres_url)
    # Short bounds keep the test short; the defaults (5 s, 3 s) are checked in tests/app/test_database_timeouts.py.
    return replace(settings, database_url=postgres_url, database_statement_timeout_seconds=2.0,
                   database_lock_timeout_seconds=1.0)


def test_a_table_locked_by_another_session_answers_unavailable_at_once_and_the_payment_is_made_after(
        pg_settings, postgres_url, backoffice_app):
    app = create_app(pg_settings)
    app.extensions["parts"]["deps"].pins.set_pin("+221770000001", PIN)
    p = UssdPhone(app.test_client(), "+221770000001")
    to_confirmation(p)
    blocker = create_engine(postgres_url)
    with blocker.connect() as other:
        # Another session holds the payments' table (a long transaction, a migration): reading goes on, writing waits.
        other.execute(text("LOCK TABLE payment_intents IN EXCLUSIVE MODE"))
        screen, seconds = timed(p, PIN)
        assert (screen, p.last_status) == (UNAVAILABLE, 200)
        assert seconds < 5.0       # the 1 s lock wait and the answer, not the other session's transaction
        other.rollback()
    blocker.dispose()
    assert payments_started(backoffice_app) == 0 and on_record(postgres_url) == []   # nothing charged, nothing owed

    again = UssdPhone(app.test_client(), "+221770000001")
    to_confirmation(again)
    assert again.answer(PIN).startswith("END Validez le paiement de 5 000 FCFA sur votre téléphone")
    assert payments_started(backoffice_app) == 1 and on_record(postgres_url) == [("pending", 5000)]


@pytest.fixture
def frozen_db(postgres_url: str) -> Iterator[tuple[str, FreezingProxy]]:
    """``postgres_url`` reached through a proxy of the test's own that can stop forwarding."""
    parsed = urlparse(postgres_url)
    with freezing_proxy(parsed.hostname or "127.0.0.1", parsed.port or 5432) as proxy:
        yield urlunparse(parsed._replace(netloc=f"{parsed.username}@127.0.0.1:{proxy.port}")), proxy


def test_a_database_that_stops_answering_mid_connection_is_given_up_within_the_gateways_patience(
        pg_settings, postgres_url, frozen_db, backoffice_app):
    url, proxy = frozen_db
    app = create_app(replace(pg_settings, database_url=url, database_statement_timeout_seconds=5.0))   # the default
    app.extensions["parts"]["deps"].pins.set_pin("+221770000001", PIN)
    p = UssdPhone(app.test_client(), "+221770000001")
    to_confirmation(p)
    proxy.freeze()     # the server hangs, or the link dies behind a box that still acknowledges: no error, no answer
    screen, seconds = timed(p, PIN)
    assert (screen, p.last_status) == (UNAVAILABLE, 200)
    # The statement's 5 s and 2 s for its cancellation, once: the rest of the hop does not wait on it again.
    assert seconds < GATEWAY_PATIENCE_AT_LEAST
    proxy.thaw()
    time.sleep(SILENCE_SECONDS)   # the customer dials again: by then the product tries the database again
    assert payments_started(backoffice_app) == 0 and on_record(postgres_url) == []

    again = UssdPhone(app.test_client(), "+221770000001")
    to_confirmation(again)
    assert again.answer(PIN).startswith("END Validez le paiement de 5 000 FCFA sur votre téléphone")
    assert payments_started(backoffice_app) == 1 and on_record(postgres_url) == [("pending", 5000)]
