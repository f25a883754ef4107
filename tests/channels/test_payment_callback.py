"""``POST /payments/callback``: the provider's signed answer settles our ledger once and queues one SMS.

Payments are put in the ledger as the Pay journey does (``create`` then ``mark_pending``);
the callbacks are signed here with the test secret, or forged, stale, malformed, oversized.
"""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.factory import create_app
from app.settings import Settings
from channels.payment_callback import MAX_BODY_BYTES, sign

SECRET = "test-callback-secret"
MSISDN = "+221770000001"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def deps(app: Flask) -> Any:
    return app.extensions["parts"]["deps"]


def pending_payment(deps: Any, provider_id: str = "PAY-0000000000000001", purpose: str = "bill",
                    msisdn: str = MSISDN, account: str = "1000001", language: str = "fr") -> str:
    key = f"key-{provider_id}"
    deps.ledger.create(idempotency_key=key, msisdn=msisdn, account_number=account, purpose=purpose,
                       amount=Decimal(5000), language=language)
    deps.ledger.mark_pending(key, provider_id)
    return provider_id


def event(payment_id: str, status: str = "succeeded", event_id: str = "EVT-1", **extra: Any) -> bytes:
    body = {"event_id": event_id, "payment_id": payment_id, "status": status, "amount": "5000", "currency": "XOF",
            "purpose": "bill", "account_number": "1000001", "msisdn": MSISDN,
            "reference": "MM23456789AB" if status == "succeeded" else None, "token": None,
            "failure_reason": None if status == "succeeded" else "insufficient_funds",
            "occurred_at": "2026-11-25T10:00:00Z", **extra}
    return json.dumps(body, separators=(",", ":")).encode()


def post(client: FlaskClient, raw: bytes, signature: str | None = "sign", at: int | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(SECRET, raw, int(time.time()) if at is None else at)
    if signature is not None:
        headers["X-Payment-Signature"] = signature
    return client.post("/payments/callback", data=raw, headers=headers)


def test_a_signed_success_settles_the_payment_and_queues_one_receipt(client, deps, caplog):
    caplog.set_level(logging.INFO)
    payment_id = pending_payment(deps)
    answer = post(client, event(payment_id))
    assert (answer.status_code, answer.json) == (200, {"status": "applied", "payment_status": "succeeded"})
    paid = deps.ledger.by_provider_id(payment_id)
    assert (paid.status, paid.reference) == ("succeeded", "MM23456789AB")
    [receipt] = deps.outbox.pending()
    assert receipt["kind"] == "payment_receipt"
    assert (receipt["msisdn"], receipt["language"]) == (MSISDN, "fr")
    assert receipt["dedupe_key"] == f"payment:{payment_id}:succeeded"
    assert receipt["payload"] == {"payment_id": payment_id, "reference": "MM23456789AB", "amount": "5000",
                                  "account_number": "1000001", "purpose": "bill", "token": None,
                                  "failure_reason": None}
    assert MSISDN not in caplog.text and "1000001" not in caplog.text


def test_a_duplicate_callback_changes_nothing_and_adds_no_second_receipt(client, deps):
    payment_id = pending_payment(deps)
    raw = event(payment_id)
    assert post(client, raw).status_code == 200
    again = post(client, raw)
    assert (again.status_code, again.json["status"]) == (200, "duplicate")
    # Another event saying the opposite of what was settled changes nothing either.
    late = post(client, event(payment_id, status="failed", event_id="EVT-2"))
    assert (late.status_code, late.json) == (200, {"status": "duplicate", "payment_status": "succeeded"})
    assert [e["kind"] for e in deps.outbox.pending()] == ["payment_receipt"]
    assert deps.ledger.by_provider_id(payment_id).status == "succeeded"


def test_a_failure_queues_a_notice_in_the_language_the_payment_was_confirmed_in(client, deps):
    payment_id = pending_payment(deps, msisdn="+221770000002", account="2000001", language="en")
    assert post(client, event(payment_id, status="failed")).status_code == 200
    failed = deps.ledger.by_provider_id(payment_id)
    assert (failed.status, failed.failure_reason) == ("failed", "insufficient_funds")
    [notice] = deps.outbox.pending()
    assert (notice["kind"], notice["language"]) == ("payment_failed", "en")
    assert notice["dedupe_key"] == f"payment:{payment_id}:failed"


def test_a_prepaid_receipt_carries_the_token(client, deps):
    payment_id = pending_payment(deps, purpose="prepaid", msisdn="+221770000003", account="3000001")
    raw = event(payment_id, purpose="prepaid", token="12345678901234567890")
    assert post(client, raw).status_code == 200
    assert deps.ledger.by_provider_id(payment_id).token == "12345678901234567890"
    [receipt] = deps.outbox.pending()
    assert receipt["payload"]["token"] == "12345678901234567890"


@pytest.mark.parametrize(("signature", "status", "code"), [
    (None, 401, "signature_missing"),
    ("", 401, "signature_missing"),
    ("v1=abc", 401, "signature_invalid"),
    ("t=notanumber,v1=abc", 401, "signature_invalid"),
    ("forged", 401, "signature_invalid"),
    ("stale", 403, "signature_expired"),
    ("future", 403, "signature_expired"),
])
def test_unsigned_forged_and_stale_callbacks_are_refused(client, deps, signature, status, code):
    payment_id = pending_payment(deps)
    raw = event(payment_id)
    now = int(time.time())
    header = {"forged": sign("guessed", raw, now), "stale": sign(SECRET, raw, now - 301),
              "future": sign(SECRET, raw, now + 600)}.get(signature or "", signature)
    answer = post(client, raw, header)
    assert (answer.status_code, answer.json["error"]) == (status, code)
    assert deps.ledger.by_provider_id(payment_id).status == "pending"
    assert deps.outbox.pending() == []


def test_a_signature_of_another_body_is_refused(client, deps):
    payment_id = pending_payment(deps)
    genuine = sign(SECRET, event(payment_id, status="failed"), int(time.time()))
    assert post(client, event(payment_id), genuine).status_code == 401
    assert deps.ledger.by_provider_id(payment_id).status == "pending"


@pytest.mark.parametrize(("raw", "code"), [
    (b"not json", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b'{"payment_id": "PAY-0000000000000001", "status": "succeeded"}', "missing_field"),
    (b'{"event_id": "E", "payment_id": "PAY-0000000000000001", "status": "maybe"}', "invalid_field"),
    (b'{"event_id": 5, "payment_id": "PAY-0000000000000001", "status": "failed"}', "invalid_field"),
])
def test_malformed_callbacks_are_refused_with_400(client, deps, raw, code):
    pending_payment(deps)
    answer = post(client, raw)
    assert (answer.status_code, answer.json["error"]) == (400, code)
    assert deps.outbox.pending() == []


def test_an_oversized_body_is_refused_with_413(client, deps):
    payment_id = pending_payment(deps)
    raw = event(payment_id, padding="x" * MAX_BODY_BYTES)
    answer = post(client, raw)
    assert answer.status_code == 413 and answer.is_json
    assert deps.ledger.by_provider_id(payment_id).status == "pending"


def test_an_unknown_payment_is_404_so_the_provider_retries(client, deps):
    answer = post(client, event("PAY-FFFFFFFFFFFFFFFF"))
    assert (answer.status_code, answer.json["error"]) == (404, "payment_not_found")
    assert deps.outbox.pending() == []


def test_without_a_secret_the_endpoint_is_not_configured(engine_db, redis_url, backoffice_url):
    app = create_app(Settings(resume_window_seconds=0, database_url=engine_db, redis_url=redis_url, backoffice_url=backoffice_url,
                              payment_callback_secret=""))
    deps = app.extensions["parts"]["deps"]
    payment_id = pending_payment(deps)
    client = app.test_client()
    for signature in (None, sign("", event(payment_id), int(time.time()))):
        answer = post(client, event(payment_id), signature)
        assert (answer.status_code, answer.json["error"]) == (503, "not_configured")
    assert deps.ledger.by_provider_id(payment_id).status == "pending"
