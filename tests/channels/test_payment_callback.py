"""``POST /payments/callback``: the provider's signed answer settles our ledger once and queues one SMS,
only when it matches what the customer confirmed.

Payments are put in the ledger as the Pay journey does (``create`` then ``mark_pending``);
the callbacks are signed here from the documented formula (``sign`` below, written out, not the
product's helper, so a change of format in the product fails these tests), or forged, stale,
malformed, oversized, or signed but disagreeing with the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from app.factory import create_app
from app.settings import Settings
from channels.payment_callback import MAX_BODY_BYTES
from engine.security_audit import SecurityEvent
from tests.support.ports import closed_port

SECRET = "test-callback-secret"
MSISDN = "+221770000001"


def sign(secret: str, raw_body: bytes, timestamp: int) -> str:
    """As the provider's documentation states it:
    ``X-Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``."""
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + raw_body,
                      hashlib.sha256).hexdigest()
    return "t=" + str(timestamp) + ",v1=" + digest


class RecordedAudit:
    """The security audit port, keeping what it is told (the app's sink is someone else's test)."""

    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []

    def record(self, event: SecurityEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture
def audit() -> RecordedAudit:
    return RecordedAudit()


@pytest.fixture
def settings(engine_db: str, redis_url: str) -> Settings:
    """The suite's settings without a back office: a callback never calls it (an address nothing listens
    on makes any such call fail loudly), and each test is quick enough to run for every mutant."""
    return Settings(resume_window_seconds=0, database_url=engine_db, redis_url=redis_url,
                    backoffice_url=f"http://127.0.0.1:{closed_port()}", backend_connect_timeout=0.5,
                    backend_read_timeout=2.0, payment_callback_secret=SECRET)


@pytest.fixture
def app(settings: Settings, audit: RecordedAudit, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr("app.factory.build_security_audit", lambda *_args, **_kw: audit)
    return create_app(settings)


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


def test_with_a_secret_the_operator_gets_no_not_configured_warning(settings, caplog):
    caplog.set_level(logging.WARNING, logger="channels.payment_callback")
    create_app(settings)
    assert not any("PAYMENT_CALLBACK_SECRET" in m for m in caplog.messages)


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
    assert [e["kind"] for e in deps.outbox.pending()] == ["payment_receipt"]
    assert deps.ledger.by_provider_id(payment_id).status == "succeeded"


def test_a_second_opinion_on_a_settled_payment_is_409_kept_and_audited(client, deps, audit):
    payment_id = pending_payment(deps)
    assert post(client, event(payment_id)).status_code == 200
    late = post(client, event(payment_id, status="failed", event_id="EVT-2"))
    assert (late.status_code, late.json["error"]) == (409, "mismatch")
    assert deps.ledger.by_provider_id(payment_id).status == "succeeded"
    assert [e["kind"] for e in deps.outbox.pending()] == ["payment_receipt"]
    [kept] = deps.ledger.mismatches(payment_id)
    assert (kept["event_id"], kept["reasons"], kept["status"]) == ("EVT-2", "status", "open")
    assert json.loads(kept["received"])["status"] == "failed"
    assert audit.kinds() == ["callback_mismatch"]


def test_a_failure_queues_a_notice_in_the_language_the_payment_was_confirmed_in(client, deps):
    payment_id = pending_payment(deps, msisdn="+221770000002", account="2000001", language="en")
    raw = event(payment_id, status="failed", msisdn="+221770000002", account_number="2000001")
    assert post(client, raw).status_code == 200
    failed = deps.ledger.by_provider_id(payment_id)
    assert (failed.status, failed.failure_reason) == ("failed", "insufficient_funds")
    [notice] = deps.outbox.pending()
    assert (notice["kind"], notice["language"]) == ("payment_failed", "en")
    assert notice["dedupe_key"] == f"payment:{payment_id}:failed"


def test_a_prepaid_receipt_carries_the_token(client, deps):
    payment_id = pending_payment(deps, purpose="prepaid", msisdn="+221770000003", account="3000001")
    raw = event(payment_id, purpose="prepaid", token="12345678901234567890", msisdn="+221770000003",
                account_number="3000001")
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


def test_a_late_approval_by_our_key_after_the_payment_was_settled_is_202_kept_for_an_agent(client, deps, audit):
    payment_id = pending_payment(deps)
    assert post(client, event(payment_id, status="failed")).status_code == 200
    late = event("PAY-0000000000000009", event_id="EVT-2", idempotency_key=f"key-{payment_id}")
    answer = post(client, late)
    # 2xx, so the provider stops sending it; never applied, kept with the payment and audited.
    assert (answer.status_code, answer.json) == (202, {"status": "kept_for_agent", "payment_status": "failed"})
    assert deps.ledger.by_provider_id(payment_id).status == "failed"
    [kept] = deps.ledger.mismatches(payment_id)
    assert (kept["event_id"], kept["reasons"]) == ("EVT-2", "payment_id,status")
    assert audit.kinds() == ["callback_after_settlement"]


def test_a_callback_our_ledger_cannot_record_now_is_503_so_the_provider_sends_it_again(client, deps, engine_db):
    payment_id = pending_payment(deps)
    with create_engine(engine_db).begin() as db:     # the ledger gone (a failed restore, a dropped table)
        db.execute(text("ALTER TABLE payment_intents RENAME TO payment_intents_away"))
    answer = post(client, event(payment_id))
    assert (answer.status_code, answer.json) == (503, {
        "error": "unavailable", "message": "the payment could not be recorded now; send it again later"})
    with create_engine(engine_db).begin() as db:     # back: the provider's retry settles it
        db.execute(text("ALTER TABLE payment_intents_away RENAME TO payment_intents"))
    assert post(client, event(payment_id)).json == {"status": "applied", "payment_status": "succeeded"}


def test_without_a_secret_the_endpoint_is_not_configured_and_the_operator_is_warned(engine_db, redis_url, caplog):
    caplog.set_level(logging.WARNING, logger="channels.payment_callback")
    app = create_app(Settings(resume_window_seconds=0, database_url=engine_db, redis_url=redis_url,
                              backoffice_url=f"http://127.0.0.1:{closed_port()}", payment_callback_secret=""))
    assert "PAYMENT_CALLBACK_SECRET is not set: /payments/callback answers 503 until it is" in caplog.messages
    deps = app.extensions["parts"]["deps"]
    payment_id = pending_payment(deps)
    client = app.test_client()
    for signature in (None, sign("", event(payment_id), int(time.time()))):
        answer = post(client, event(payment_id), signature)
        assert (answer.status_code, answer.json["error"]) == (503, "not_configured")
    assert deps.ledger.by_provider_id(payment_id).status == "pending"


# ---------------------------------------------------------------- callbacks that disagree with the ledger
@pytest.mark.parametrize(("field", "value"), [
    ("amount", "1"),
    ("amount", "5000.01"),
    ("account_number", "9999999"),
    ("msisdn", "+221770000002"),
    ("currency", "EUR"),
])
def test_a_signed_callback_that_disagrees_with_the_ledger_is_409_kept_and_audited(client, deps, audit, field,
                                                                                  value):
    payment_id = pending_payment(deps)
    answer = post(client, event(payment_id, **{field: value}))
    assert (answer.status_code, answer.json["error"]) == (409, "mismatch")
    assert field in answer.json["message"]
    assert deps.ledger.by_provider_id(payment_id).status == "pending"
    assert deps.outbox.pending() == []
    [kept] = deps.ledger.mismatches(payment_id)
    assert (kept["reasons"], kept["source"], json.loads(kept["received"])[field]) == (field, "callback", value)
    [security] = audit.events
    assert (security.kind, security.subject, security.account) == ("callback_mismatch", MSISDN, "1000001")
    assert MSISDN not in security.detail and "1000001" not in security.detail
    # The genuine result afterwards still settles it.
    assert post(client, event(payment_id, event_id="EVT-genuine")).status_code == 200
    assert deps.ledger.by_provider_id(payment_id).status == "succeeded"


def test_the_report_example_amount_1_and_account_9999999_is_not_applied(client, deps):
    payment_id = pending_payment(deps, provider_id="PAY-00000000000000AA", msisdn="+221770000002",
                                 account="2000001")
    deps_payment = deps.ledger.by_provider_id(payment_id)
    assert deps_payment.amount == 5000
    raw = event(payment_id, amount="1", account_number="9999999", msisdn="+221770000002")
    answer = post(client, raw)
    # The provider is told each field that disagrees, and that the result waits for an agent.
    assert (answer.status_code, answer.json) == (409, {
        "error": "mismatch",
        "message": "the callback disagrees with the payment on record (amount, account_number); kept for an agent"})
    assert deps.ledger.by_provider_id(payment_id).status == "pending"
    [kept] = deps.ledger.mismatches(payment_id)
    assert kept["reasons"] == "amount,account_number"


@pytest.mark.parametrize("missing", ["amount", "currency", "account_number", "msisdn"])
def test_a_callback_without_the_fields_to_cross_check_is_400(client, deps, missing):
    payment_id = pending_payment(deps)
    body = json.loads(event(payment_id))
    del body[missing]
    answer = post(client, json.dumps(body).encode())
    assert (answer.status_code, answer.json["error"]) == (400, "missing_field")
    assert deps.ledger.by_provider_id(payment_id).status == "pending"


def test_forged_and_stale_callbacks_are_security_events_without_a_number(client, deps, audit):
    payment_id = pending_payment(deps)
    raw = event(payment_id)
    now = int(time.time())
    assert post(client, raw, sign("guessed", raw, now)).status_code == 401
    assert post(client, raw, None).status_code == 401
    assert post(client, raw, sign(SECRET, raw, now - 3600)).status_code == 403
    assert audit.kinds() == ["callback_forged", "callback_forged", "callback_stale"]
    assert all(e.channel == "payment_callback" and e.subject == "127.0.0.1" for e in audit.events)
    assert deps.ledger.by_provider_id(payment_id).status == "pending"


def test_the_signature_format_is_the_documented_one(client, deps):
    """A header built by hand, byte for byte as the documentation shows it, is accepted."""
    payment_id = pending_payment(deps)
    raw = event(payment_id)
    t = int(time.time())
    mac = hmac.new(b"test-callback-secret", f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    assert post(client, raw, f"t={t},v1={mac}").status_code == 200


@pytest.mark.parametrize(("raw", "code", "message"), [
    (b"not json", "invalid_json", "the body is not valid JSON"),
    (b"[1, 2]", "invalid_json", "the body must be a JSON object"),
    (b'{"event_id": "E", "payment_id": "P", "status": "maybe"}', "invalid_field",
     "'status' must be succeeded or failed"),
    (b'{"payment_id": "P", "status": "failed"}', "missing_field", "'event_id' is required"),
    (b'{"event_id": "", "payment_id": "P", "status": "failed"}', "missing_field", "'event_id' is required"),
    (b'{"event_id": 7, "payment_id": "P", "status": "failed"}', "invalid_field",
     "'event_id' must be a string of at most 100 characters"),
])
def test_a_malformed_callback_is_told_what_is_wrong(client, deps, raw, code, message):
    answer = post(client, raw)
    assert (answer.status_code, answer.json) == (400, {"error": code, "message": message})


@pytest.mark.parametrize(("field", "value", "status", "message"), [
    ("event_id", "E" * 100, 200, None),
    ("event_id", "E" * 101, 400, "'event_id' must be a string of at most 100 characters"),
    ("amount", "5000." + "0" * 15, 200, None),
    ("amount", "5000." + "0" * 16, 400, "'amount' must be a string of at most 20 characters"),
    ("amount", "abc", 400, "'amount' must be a decimal string"),
    ("amount", "NaN", 400, "'amount' must be a decimal string"),
    ("currency", "", 400, "'currency' is required"),
    ("currency", "X" * 9, 400, "'currency' must be a string of at most 8 characters"),
    ("account_number", "1" * 33, 400, "'account_number' must be a string of at most 32 characters"),
    ("msisdn", "+" + "2" * 20, 400, "'msisdn' must be a string of at most 20 characters"),
])
def test_each_field_has_its_limit_and_its_form(client, deps, field, value, status, message):
    payment_id = pending_payment(deps)
    answer = post(client, event(payment_id, **{field: value}))
    assert answer.status_code == status, answer.json
    if status == 400:
        expected = "missing_field" if value == "" else "invalid_field"
        assert answer.json == {"error": expected, "message": message}
        assert deps.ledger.by_provider_id(payment_id).status == "pending"
    else:
        assert deps.ledger.by_provider_id(payment_id).status == "succeeded"


def test_refused_signatures_and_unknown_payments_are_told_why_and_audited_with_the_reason(client, deps, audit):
    payment_id = pending_payment(deps)
    raw = event(payment_id)
    now = int(time.time())
    mac = sign(SECRET, raw, now).split("v1=")[1]
    cases = [
        (None, 401, "signature_missing", "the X-Payment-Signature header is required"),
        (f"t={now}", 401, "signature_invalid", "the signature is malformed"),
        (f"v1={mac}", 401, "signature_invalid", "the signature is malformed"),
        (sign(SECRET, raw, 1_000_000_000_000), 401, "signature_invalid", "the signature is malformed"),  # 13 digits
        (sign("guessed", raw, now), 401, "signature_invalid", "the signature does not match"),
        (sign(SECRET, raw, 999_999_999_999), 403, "signature_expired",
         "the signature is too old (replayed request?)"),
    ]
    for header, status, code, message in cases:
        answer = post(client, raw, header)
        assert (answer.status_code, answer.json) == (status, {"error": code, "message": message}), header
    assert [(e.kind, e.detail) for e in audit.events] == [
        ("callback_forged", "signature_missing"), ("callback_forged", "signature_invalid"),
        ("callback_forged", "signature_invalid"), ("callback_forged", "signature_invalid"),
        ("callback_forged", "signature_invalid"), ("callback_stale", "signature_expired")]
    unknown = post(client, event("PAY-FFFFFFFFFFFFFFFF"))
    assert unknown.json == {"error": "payment_not_found", "message": "no payment with this payment_id"}
    assert deps.ledger.by_provider_id(payment_id).status == "pending"


def test_a_signature_exactly_five_minutes_old_is_still_accepted() -> None:
    from channels.payment_callback import Applied, CallbackRejected, PaymentCallbacks

    signed_at = 1_764_000_000
    raw = event("PAY-0000000000000001")
    applied: list[str] = []

    def apply(callback: Any) -> Applied:
        applied.append(callback.payment_id)
        return Applied("succeeded", True)

    for age, status in ((300, 200), (301, 403)):
        callbacks = PaymentCallbacks(apply, SECRET, clock=partial(float, signed_at + age))
        try:
            answered = callbacks.handle(raw, sign(SECRET, raw, signed_at))[0]
        except CallbackRejected as refused:
            answered = refused.status
        assert answered == status
    assert applied == ["PAY-0000000000000001"]
