"""Outbox rows sent before secrets were sealed kept their prepaid token (or code) in clear until the retention
purge. Migration ``t1`` erases them from every row already sent, failed or suppressed, leaving the shape a row
sealed since has once sent, so an agent's "send again" is told where the customer reads the token; a row still
to send is left for the worker. SQLite and PostgreSQL, upgrade and downgrade, as ``alembic`` runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from app.notify import Dispatcher, NotificationTemplates
from app.storage import make_sessions
from app.storage.agent_console import SqlCustomerRecords
from app.storage.delivery import SqlDeliveryQueue
from app.storage.outbox_seal import OutboxSeal
from backend_clients.africastalking_sms import AfricasTalkingSms
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.outbox_rows import raw_rows

ROOT = Path(__file__).resolve().parents[2]
PREPAID, HOLDER = "+221770000003", "+221770000001"
TOKEN, PENDING_TOKEN, UNDO = "48213907561284730195", "11223344556677889900", "735201"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
# As the outbox wrote them before sealing: the secrets in the JSON payload.
OLD_ROWS: list[tuple[str, str, str, str, dict[str, str | None]]] = [
    ("payment:P1", "payment_receipt", PREPAID, "sent",
     {"payment_id": "P1", "reference": "MM1", "amount": "2000", "account_number": "3000001", "purpose": "prepaid",
      "token": TOKEN, "failure_reason": None}),
    ("link_notice:s1:1000001", "link_notice", HOLDER, "failed",
     {"account_number": "1000001", "linked_number": "+2217*****222", "undo_code": UNDO,
      "undo_keyword": f"ANNULER {UNDO}", "undo_menu": "8 > 5"}),
    ("payment:P2", "payment_receipt", PREPAID, "pending",
     {"payment_id": "P2", "reference": "MM2", "amount": "1000", "account_number": "3000001", "purpose": "prepaid",
      "token": PENDING_TOKEN, "failure_reason": None}),
    ("bill:1", "bill_issued", HOLDER, "sent", {"account_number": "1000001", "note": "token"}),
]


def alembic(url: str, verb: str, revision: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    getattr(command, verb)(config, revision)


def payloads(url: str) -> dict[str, tuple[dict[str, object], str | None]]:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            rows = db.execute(text("SELECT dedupe_key, payload, sealed FROM outbox_events")).all()
    finally:
        engine.dispose()
    return {key: (json.loads(payload), sealed) for key, payload, sealed in rows}


def with_old_rows(url: str) -> None:
    """The database as it was before sealing (revision s1 has the column, nothing used it yet)."""
    alembic(url, "upgrade", "s1")
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            for key, kind, msisdn, status, payload in OLD_ROWS:
                db.execute(text("INSERT INTO outbox_events (dedupe_key, kind, msisdn, language, payload, status, "
                                "attempts, created_at, channel, delivery_status) "
                                "VALUES (:k, :kind, :m, 'en', :p, :s, 1, :t, 'sms', :d)"),
                           # Each one done was reported failed by the provider: an agent may send it again.
                           {"k": key, "kind": kind, "m": msisdn, "p": json.dumps(payload), "s": status, "t": NOW,
                            "d": None if status == "pending" else "failed"})
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'engine.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_the_token_of_a_receipt_sent_before_sealing_is_erased_and_stays_so(database: str) -> None:
    with_old_rows(database)
    assert TOKEN in raw_rows(database) and UNDO in raw_rows(database)
    alembic(database, "upgrade", "head")
    rows = raw_rows(database)
    assert TOKEN not in rows and UNDO not in rows
    after = payloads(database)
    receipt, notice = after["payment:P1"], after["link_notice:s1:1000001"]
    assert receipt == ({**{k: v for k, v in OLD_ROWS[0][4].items() if k != "token"}, "sealed": ["token"]}, None)
    assert notice == ({"account_number": "1000001", "linked_number": "+2217*****222", "undo_menu": "8 > 5",
                       "sealed": ["undo_code", "undo_keyword"]}, None)
    # Still to send: the worker sends it from its payload. A value that only reads "token" is no secret.
    assert after["payment:P2"] == (OLD_ROWS[2][4], None) and after["bill:1"] == (OLD_ROWS[3][4], None)

    alembic(database, "downgrade", "s1")        # safe: nothing breaks, nothing comes back
    assert payloads(database) == after
    alembic(database, "upgrade", "head")        # and again: unchanged
    assert payloads(database) == after


def test_an_agent_sending_such_a_receipt_again_is_told_where_the_customer_reads_the_token(
        tmp_path: Path, provider: FakeAfricasTalking) -> None:
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    with_old_rows(url)
    alembic(url, "upgrade", "head")
    queue = SqlDeliveryQueue(make_sessions(url))
    sms = AfricasTalkingSms(provider.username, provider.api_key, api_url=provider.url, timeout=(0.5, 2))
    dispatcher = Dispatcher(queue, NotificationTemplates.load("config/notifications.yaml"), {"sms": sms},
                            seal=OutboxSeal([Fernet.generate_key()]), clock=lambda: NOW)
    console = SqlCustomerRecords(make_sessions(url), security=None, identity=None)  # type: ignore[arg-type]
    assert console.resend(PREPAID, 1)
    assert dispatcher.run_once().failed == 1
    assert queue.get(1)["last_error"] == ("not sent: its prepaid token was erased after a first send; the customer "
                                          "reads it again in *123*3*2# (last payments)")
    # The receipt still to send goes, with its token.
    assert [m for m in provider.messages_to(PREPAID) if "1122 3344 5566 7788 9900" in m]
