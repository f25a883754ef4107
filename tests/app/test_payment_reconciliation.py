"""Payments that never hear back are settled anyway, and the ledger holds under concurrent writers.

The provider's callback cannot reach the engine here (its public URL is a closed port), so the
only way a payment leaves ``pending`` is the worker asking the provider for its status, as it
does for any payment pending longer than ``payment_status_after_seconds``. The clock of each
pass is given to the worker, so no test waits for real minutes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask

from app.factory import build_deps, create_app
from app.settings import Settings
from app.storage import make_sessions, migrate
from app.worker import run_once
from backoffice.models import PaymentIntent
from dialogs.payments import MAX_STATUS_CHECKS, settle_provider_result
from dialogs.stores import ProviderResult
from tests.channels.test_ussd_payments import PIN, pay_whole_balance
from tests.support.clock import SettableClock
from tests.support.engine import UssdPhone
from tests.support.ports import closed_port
from tests.support.present import present

AFTER = 300


@pytest.fixture
def unreachable(settings: Settings) -> Settings:
    """The suite's settings, with callbacks sent to a closed port: the provider's word never arrives."""
    return replace(settings, public_base_url=f"http://127.0.0.1:{closed_port()}", payment_status_after_seconds=AFTER)


@pytest.fixture
def app(unreachable: Settings) -> Flask:
    return create_app(unreachable)


@pytest.fixture
def deps(app: Flask) -> Any:
    return app.extensions["parts"]["deps"]


def start_payment(phone: Callable[[str], UssdPhone], deps: Any) -> str:
    """+221770000001 pays the whole balance (12 500) with Orange Money; returns the provider's payment id."""
    end = pay_whole_balance(phone, deps).answer(PIN)
    assert end.startswith("END Validez le paiement de 12 500 FCFA"), end
    return end.rsplit(" ", 1)[1]


def approve(backoffice_url: str, payment_id: str) -> None:
    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/approve", timeout=5).raise_for_status()


def later(seconds: float) -> Callable[[], datetime]:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return lambda: at


def test_a_payment_whose_callback_never_arrives_is_settled_by_asking_its_status(
        phone, deps, unreachable, backoffice_url, backoffice_app):
    payment_id = start_payment(phone, deps)
    approve(backoffice_url, payment_id)
    with backoffice_app.extensions["backoffice"].sessions() as db:   # the provider did try to tell us
        assert db.get(PaymentIntent, payment_id).callback_delivered_at is None
    assert deps.ledger.by_provider_id(payment_id).status == "pending"

    # Not yet due: the worker leaves a young payment alone.
    assert run_once(unreachable, clock=later(AFTER - 30)) == {"tickets_sent": 0}
    assert deps.ledger.by_provider_id(payment_id).status_checks == 0

    assert run_once(unreachable, clock=later(AFTER + 1)) == {"tickets_sent": 0, "payments_settled": 1}
    paid = deps.ledger.by_provider_id(payment_id)
    assert paid.status == "succeeded" and paid.reference and paid.reference.startswith("MM")
    [receipt] = deps.outbox.pending()
    assert (receipt["kind"], receipt["msisdn"], receipt["language"]) == ("payment_receipt", "+221770000001", "fr")
    assert receipt["payload"]["reference"] == paid.reference
    # Settled once: the next pass has nothing to ask.
    assert run_once(unreachable, clock=later(3 * AFTER)) == {"tickets_sent": 0}

    again = phone("+221770000001")
    again.dial("3")
    again.answer("3")                   # last payments keeps its number when nothing is due
    assert again.answer("1").startswith("CON Paiement réussi le ")


def test_a_declined_payment_found_by_asking_is_failed_with_its_reason(phone, deps, unreachable, backoffice_url):
    payment_id = start_payment(phone, deps)
    requests.post(f"{backoffice_url}/api/v1/payments/{payment_id}/decline", timeout=5,
                  json={"reason": "insufficient_funds"}).raise_for_status()
    run_once(unreachable, clock=later(AFTER + 1))
    failed = deps.ledger.by_provider_id(payment_id)
    assert (failed.status, failed.failure_reason) == ("failed", "insufficient_funds")
    [notice] = deps.outbox.pending()
    assert notice["kind"] == "payment_failed"


def test_a_payment_the_provider_never_decides_is_given_up_after_five_questions(phone, deps, unreachable):
    payment_id = start_payment(phone, deps)
    for n in range(1, MAX_STATUS_CHECKS):
        counts = run_once(unreachable, clock=later(n * (AFTER + 1)))
        assert counts == {"tickets_sent": 0, "payments_still_pending": 1}
        still = deps.ledger.by_provider_id(payment_id)
        assert (still.status, still.status_checks) == ("pending", n)
        # Asked again only once another full delay has passed since the last question.
        assert run_once(unreachable, clock=later(n * (AFTER + 1) + 10)) == {"tickets_sent": 0}
    assert deps.outbox.pending() == []

    counts = run_once(unreachable, clock=later(MAX_STATUS_CHECKS * (AFTER + 1)))
    assert counts == {"tickets_sent": 0, "payments_given_up": 1}
    given_up = deps.ledger.by_provider_id(payment_id)
    assert (given_up.status, given_up.status_checks) == ("unconfirmed", MAX_STATUS_CHECKS)
    [told] = deps.outbox.pending()
    assert (told["kind"], told["msisdn"], told["language"]) == ("payment_unconfirmed", "+221770000001", "fr")
    assert told["payload"]["payment_id"] == payment_id
    assert told["dedupe_key"] == f"payment:{payment_id}:unconfirmed"
    # Never asked a sixth time.
    assert run_once(unreachable, clock=later(10 * AFTER)) == {"tickets_sent": 0}

    again = phone("+221770000001")
    again.dial("3")
    again.answer("3")
    assert again.answer("1").startswith("CON Paiement non confirmé par l'opérateur.\nLe ")


def test_a_late_word_from_the_provider_still_settles_an_unconfirmed_payment(phone, deps, unreachable,
                                                                              backoffice_url, backoffice_app):
    payment_id = start_payment(phone, deps)
    for n in range(1, MAX_STATUS_CHECKS + 1):
        run_once(unreachable, clock=later(n * (AFTER + 1)))
    assert deps.ledger.by_provider_id(payment_id).status == "unconfirmed"
    approve(backoffice_url, payment_id)
    with backoffice_app.extensions["backoffice"].sessions() as db:
        body = json.loads(db.get(PaymentIntent, payment_id).event_body)
    settled = settle_provider_result(deps, ProviderResult(
        event_id=body["event_id"], payment_id=payment_id, status=body["status"], amount=Decimal(body["amount"]),
        currency=body["currency"], account_number=body["account_number"], msisdn=body["msisdn"],
        reference=body["reference"]))
    assert settled.changed and present(settled.payment).status == "succeeded"
    assert [e["kind"] for e in deps.outbox.pending()] == ["payment_unconfirmed", "payment_receipt"]


def test_the_provider_unreachable_counts_as_a_question(phone, deps, unreachable):
    payment_id = start_payment(phone, deps)
    down = replace(unreachable, backoffice_url=f"http://127.0.0.1:{closed_port()}", backend_retries=0,
                   backend_connect_timeout=0.2)
    assert run_once(down, clock=later(AFTER + 1))["payments_still_pending"] == 1
    assert deps.ledger.by_provider_id(payment_id).status_checks == 1


def test_the_wait_is_measured_on_the_product_clock_the_worker_passes_run_on(engine_db, settings):
    """The app's ledger stamps "pending since" on ``Settings.clock``, the clock of the worker's passes: on
    a clock far from the wall's, a payment is due exactly ``payment_status_after_seconds`` later."""
    clock = SettableClock(datetime(2027, 3, 1, 0, 0, 0, tzinfo=UTC))
    deps = build_deps(replace(settings, database_url=engine_db, clock=clock), make_sessions(engine_db))
    ledger = present(deps.ledger)
    ledger.create(idempotency_key="pay-clock", msisdn="+221770000001", account_number="1000001",
                  purpose="bill", amount=Decimal(12500), wallet="orange_money")
    ledger.mark_pending("pay-clock", "PAY-CLOCK00000000001")
    assert ledger.due_for_status(clock.now + timedelta(seconds=AFTER - 1), AFTER) == []
    assert [p.provider_payment_id for p in ledger.due_for_status(clock.now + timedelta(seconds=AFTER), AFTER)
            ] == ["PAY-CLOCK00000000001"]


# ---------------------------------------------------------------- concurrent writers on the ledger
def _deps(database_url: str, settings: Settings) -> Any:
    return build_deps(replace(settings, database_url=database_url), make_sessions(database_url))


def _all_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; their results in order."""
    gate = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        gate.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    return results


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_deps(request: pytest.FixtureRequest, engine_db: str, settings: Settings) -> Any:
    if request.param == "sqlite":
        return _deps(engine_db, settings)
    url = request.getfixturevalue("postgres_url")
    migrate(url)
    return _deps(url, settings)


def test_concurrent_hops_creating_the_same_payment_leave_one_row(ledger_deps):
    created = _all_at_once(8, lambda _i: ledger_deps.ledger.create(
        idempotency_key="pay-same", msisdn="+221770000001", account_number="1000001", purpose="bill",
        amount=Decimal(12500), wallet="orange_money"))
    assert {p.idempotency_key for p in created} == {"pay-same"}
    assert len(ledger_deps.ledger.recent("+221770000001", limit=50)) == 1


def test_concurrent_results_for_one_payment_settle_it_once(ledger_deps):
    ledger_deps.ledger.create(idempotency_key="pay-race", msisdn="+221770000001", account_number="1000001",
                              purpose="bill", amount=Decimal(12500))
    ledger_deps.ledger.mark_pending("pay-race", "PAY-RACE000000000001")

    def deliver(i: int) -> Any:
        status = "succeeded" if i % 2 == 0 else "failed"
        return settle_provider_result(ledger_deps, ProviderResult(
            event_id=f"EVT-{i}", payment_id="PAY-RACE000000000001", status=status, amount=Decimal(12500),
            currency="XOF", account_number="1000001", msisdn="+221770000001",
            reference=f"MM{i:010d}" if status == "succeeded" else None,
            failure_reason=None if status == "succeeded" else "insufficient_funds"))

    results = _all_at_once(6, deliver)
    assert sum(1 for r in results if r.changed) == 1
    final = ledger_deps.ledger.by_provider_id("PAY-RACE000000000001")
    assert final.status in ("succeeded", "failed")
    # Every other result either agreed (a duplicate) or was kept for an agent, never applied.
    assert all(r.changed or r.payment.status == final.status for r in results)
    assert [e["kind"] for e in ledger_deps.outbox.pending()] == [
        "payment_receipt" if final.status == "succeeded" else "payment_failed"]
