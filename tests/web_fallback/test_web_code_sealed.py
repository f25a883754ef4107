"""The web sign-in code on its way through the outbox: whoever reads the product's database (a DBA, a
backup, on SQLite and on PostgreSQL) finds no code in it, the customer still gets the exact code by SMS
from the real worker (``app.worker.run_once``) through the fake Africa's Talking, and a worker holding
another ``OUTBOX_SEAL_KEY`` sends nothing garbled: the message is failed with a reason IT can read."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from app.factory import create_app
from app.settings import Settings
from app.storage import migrate
from app.worker import run_once
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking

from .web_visitor import WebVisitor

AWA = "+221770000001"


def outbox_rows(database_url: str) -> list[str]:
    """Every column of every outbox row, as text: what a database reader sees."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            return [" ".join(str(v) for v in row) for row in db.execute(text("SELECT * FROM outbox_events"))]
    finally:
        engine.dispose()


def only_outcome(database_url: str) -> tuple[str, str | None, str | None]:
    """Status, reason and sealed token of the one outbox row: what an agent and a database reader see."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            return tuple(db.execute(text("SELECT status, last_error, sealed FROM outbox_events")).one())
    finally:
        engine.dispose()


def sent_code(provider: FakeAfricasTalking, number: str) -> str:
    [message] = provider.messages_to(number)
    found = re.search(r"\b(\d{6})\b", message)
    assert found, message
    return found.group(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def sealed_settings(request: pytest.FixtureRequest, web_settings: Settings) -> Settings:
    """The product with a seal key, on the embedded SQLite or on PostgreSQL."""
    found = replace(web_settings, outbox_seal_key=Fernet.generate_key().decode())
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        migrate(url)
        found = replace(found, database_url=url)
    return found


def test_the_code_is_nowhere_in_the_database_and_the_customer_gets_it_by_sms(
        sealed_settings: Settings, provider: FakeAfricasTalking) -> None:
    browser = WebVisitor(create_app(sealed_settings).test_client(), "127.0.0.1")
    browser.open()
    browser.ask_code("77 000 00 01")
    queued = outbox_rows(sealed_settings.database_url)
    assert len(queued) == 1 and "web_code" in queued[0]

    assert run_once(sealed_settings).get("notifications_sent") == 1
    code = sent_code(provider, AWA)
    assert provider.messages_to(AWA) == [
        f"ElecNet: votre code de connexion au site est {code}. Valable 5 minutes. Ne le donnez à personne."]
    # Neither while it waited for the worker nor once sent does the row hold the code, sealed or not.
    [after] = outbox_rows(sealed_settings.database_url)
    assert code not in queued[0] and code not in after
    assert "gAAAA" in queued[0] and "gAAAA" not in after     # the sealed token, erased once sent
    assert browser.sign_in(code).startswith("ElecNet - 1000001\n1. Solde et factures")


def test_a_worker_with_another_key_sends_nothing_garbled_and_says_why(
        web_settings: Settings, provider: FakeAfricasTalking) -> None:
    engine_side = replace(web_settings, outbox_seal_key=Fernet.generate_key().decode())
    browser = WebVisitor(create_app(engine_side).test_client(), "127.0.0.1")
    browser.open()
    browser.ask_code("77 000 00 01")

    worker_side = replace(web_settings, outbox_seal_key=Fernet.generate_key().decode())
    assert run_once(worker_side).get("notifications_failed") == 1
    assert provider.sent == []
    status, error, sealed = only_outcome(web_settings.database_url)
    assert (status, sealed) == ("failed", None)
    assert error == ("not sent: its sealed code cannot be opened: OUTBOX_SEAL_KEY is not the key it was "
                     "sealed with")
    # Not retried later either: the customer asks for a new code.
    assert run_once(engine_side).get("notifications_sent") is None and provider.sent == []


def test_without_a_key_the_engine_and_the_worker_of_one_process_still_agree(
        web_settings: Settings, provider: FakeAfricasTalking, sms_code: Callable[[str], str],
        visitor: Callable[[], WebVisitor]) -> None:
    # The embedded default (no OUTBOX_SEAL_KEY): a random key for the process, never the code in clear.
    browser = visitor()
    browser.open()
    browser.ask_code("77 000 00 01")
    queued = outbox_rows(web_settings.database_url)
    code = sms_code(AWA)
    assert code not in queued[0]
    assert browser.sign_in(code).startswith("ElecNet - 1000001")


def test_a_code_the_worker_could_not_send_within_its_minutes_is_not_sent_late(
        web_settings: Settings, provider: FakeAfricasTalking) -> None:
    clock = SettableClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    settings = replace(web_settings, outbox_seal_key=Fernet.generate_key().decode(), clock=clock)
    browser = WebVisitor(create_app(settings).test_client(), "127.0.0.1")
    browser.open()
    browser.ask_code("77 000 00 01")
    # The SMS provider was down for six minutes: the code ("valid 5 minutes") would fail where it is typed.
    clock.advance(minutes=6)
    assert run_once(settings).get("notifications_failed") == 1
    assert provider.sent == []
    status, error, sealed = only_outcome(settings.database_url)
    assert (status, sealed) == ("failed", None)
    assert error == ("not sent: its code expired before it could be sent (valid 5 minutes); the customer asks "
                     "for a new one")
    # A new code asked now goes at once.
    browser.ask_code("77 000 00 01")
    assert run_once(settings).get("notifications_sent") == 1
    assert "Valable 5 minutes" in provider.messages_to(AWA)[0]
