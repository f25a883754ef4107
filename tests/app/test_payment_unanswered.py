"""A payment never sent to the provider that it never answers about all day is flagged, not forgotten; old ones
that it did answer about are purged.

Awa confirmed 12 500 FCFA while the payment client's circuit was open: the request never left, she was told
nothing was charged, and the payment is ``not_started``. The worker asks the provider by our key in case it got
it after all. Before, when the provider never answered a single question all day, the worker simply stopped
asking, with no alarm. Now the payment becomes ``unanswered``: audited, counted in ``payments_unanswered_total``
and listed under "Payments to resolve" on the agents' console, where an agent asks the provider again. A
``not_started`` payment the provider did answer about ("no such payment") is deleted by the retention purge
after ``PAYMENT_NOT_STARTED_KEEP_DAYS``.
"""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from app.factory import build_deps, create_app
from app.ops import Metrics
from app.settings import Settings
from app.storage import make_sessions
from app.storage.models import PaymentIntentRow
from app.storage.retention import purge, retention_rules
from app.worker import PurgeSchedule, reconcile_payments
from tests.support.ports import closed_port
from tests.web_fallback.agents.conftest import sign_in

AWA = "+221770000001"
KEY = "pay-" + "e" * 40
DAY = 3600


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def never_sent(deps: Any, key: str = KEY) -> None:
    """Confirmed while the client's circuit was open: kept, never sent, the customer told nothing was charged."""
    deps.ledger.create(idempotency_key=key, msisdn=AWA, account_number="1000001", purpose="bill",
                       amount=Decimal(12500), wallet="orange_money")
    assert deps.ledger.mark_not_started(key).status == "not_started"


@pytest.fixture
def down(settings: Settings) -> Settings:
    """The provider unreachable for the worker; it asks by our key for an hour (the day, shortened)."""
    return replace(settings, backoffice_url=f"http://127.0.0.1:{closed_port()}",
                   payment_unrecorded_give_up_seconds=DAY)


def to_resolve(app: Flask, *, check: bool = False) -> str:
    """Awa's "Payments to resolve" as an agent reads it (after asking the provider again, with ``check``)."""
    agent = app.test_client()
    token = sign_in(agent, "Fatou", "agent")
    page = agent.post("/console/lookup", data={"kind": "phone", "q": AWA, "csrf_token": token},
                      follow_redirects=True)
    if check:
        page = agent.post("/console/payment-check", data={"csrf_token": token, "key": KEY}, follow_redirects=True)
    text = html.unescape(page.get_data(as_text=True))
    start = text.index("<h3>Payments to resolve</h3>")
    return text[start:text.index("<h3>", start + 4)]


def agents(settings: Settings, tmp_path: Path) -> Flask:
    return create_app(replace(settings, agents_dev_signin=True, secret_key="agents-test-secret",
                              simulator_database_url=f"sqlite:///{tmp_path / 'simulator.db'}"))


def test_never_sent_and_never_answered_about_all_day_it_is_flagged_counted_audited_and_listed(
        settings, down, tmp_path) -> None:
    deps: Any = build_deps(down, make_sessions(down.database_url))
    metrics = Metrics()
    never_sent(deps)
    for minutes in (5, 10, 20, 40):     # asked by our key; no answer
        reconcile_payments(deps, down, later(minutes * 60 + 1), metrics)
    assert deps.ledger.get(KEY).status == "not_started"
    assert metrics.registry.get_sample_value("payments_unanswered_total") == 0

    counts = reconcile_payments(deps, down, later(DAY + 120), metrics)

    assert counts["unanswered"] == 1 and deps.ledger.get(KEY).status == "unanswered"
    assert metrics.registry.get_sample_value("payments_unanswered_total") == 1
    [event] = [e for e in deps.security.for_account("1000001") if e.kind == "payment_unanswered"]
    assert (event.channel, event.extra) == ("worker", {"amount": "12500", "purpose": "bill"})
    # Flagged once, however many passes.
    assert reconcile_payments(deps, down, later(3 * DAY), metrics)["unanswered"] == 0
    assert metrics.registry.get_sample_value("payments_unanswered_total") == 1
    # Nor purged while it waits for an agent.
    assert purge(make_sessions(down.database_url), now=later(400 * 86_400),
                 rules=retention_rules(not_started_days=1))["payment_intents.not_started"] == 0

    console = agents(settings, tmp_path)       # the provider answers again
    listed = to_resolve(console)
    assert KEY in listed and "12500 XOF" in listed
    assert "never sent, and the provider never answered about it" in listed
    assert "Vérifier auprès de l'opérateur" in listed

    asked = to_resolve(console, check=True)    # it has no payment under our key: nothing was taken

    assert KEY not in asked and "None." in asked
    assert deps.ledger.get(KEY).status == "not_started"


def test_never_sent_but_answered_about_it_is_not_flagged_and_is_purged_after_the_setting(
        settings, monkeypatch) -> None:
    up = replace(settings, payment_unrecorded_give_up_seconds=DAY)
    deps: Any = build_deps(up, make_sessions(up.database_url))
    metrics = Metrics()
    never_sent(deps)
    reconcile_payments(deps, up, later(5 * 60 + 1), metrics)    # the provider: no payment under this key

    assert reconcile_payments(deps, up, later(DAY + 120), metrics)["unanswered"] == 0
    assert deps.ledger.get(KEY).status == "not_started"
    assert metrics.registry.get_sample_value("payments_unanswered_total") == 0

    monkeypatch.setenv("PAYMENT_NOT_STARTED_KEEP_DAYS", "10")
    keep = Settings.from_env().payment_not_started_keep_days
    assert keep == 10
    sessions = make_sessions(up.database_url)
    kept = purge(sessions, now=later(9 * 86_400), rules=retention_rules(not_started_days=keep))
    assert kept["payment_intents.not_started"] == 0 and deps.ledger.get(KEY) is not None
    never_sent(deps, "pay-recent")
    with sessions.begin() as db:     # confirmed 11 days ago
        db.execute(update(PaymentIntentRow).where(PaymentIntentRow.idempotency_key == KEY)
                   .values(created_at=later(-11 * 86_400)))

    done = PurgeSchedule(sessions, 3600, rules=retention_rules(not_started_days=keep)).run_if_due()

    assert done is not None and done["payment_intents.not_started"] == 1
    assert deps.ledger.get(KEY) is None and deps.ledger.get("pay-recent").status == "not_started"
