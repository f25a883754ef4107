"""Mobile money over HTTP: idempotent initiation, deciding once, bills and credit, signed callbacks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from backoffice import BackofficeConfig
from backoffice.callbacks import SIGNATURE_HEADER, verify
from tests.support.backoffice import CALLBACK_SECRET

from .conftest import CallbackReceiver


def _pay(api: str, http: requests.Session, key: str, **fields: Any) -> requests.Response:
    body = {"account_number": "1000001", "msisdn": "+221770000001", "amount": "7000", "purpose": "bill", **fields}
    return http.post(f"{api}/payments", json=body, headers={"Idempotency-Key": key})


def _check_signature(header: str, raw: bytes) -> None:
    """Verify by hand exactly as API.md describes (and with the module's helper)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    assert set(parts) == {"t", "v1"}
    assert abs(int(parts["t"]) - time.time()) < 60
    expected = hmac.new(CALLBACK_SECRET.encode(), parts["t"].encode() + b"." + raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert verify(CALLBACK_SECRET, raw, header)
    assert not verify("another-secret", raw, header)


def test_same_key_twice_is_one_payment(api: str, http: requests.Session) -> None:
    first = _pay(api, http, "key-1")
    assert first.status_code == 202
    payment = first.json()
    assert payment["status"] == "pending" and payment["amount"] == "7000" and payment["currency"] == "XOF"
    assert payment["reference"] is None and payment["token"] is None
    again = _pay(api, http, "key-1")
    assert again.status_code == 200
    assert again.json()["payment_id"] == payment["payment_id"]
    assert _pay(api, http, "key-1", amount="5000").status_code == 409

    approved = http.post(f"{api}/payments/{payment['payment_id']}/approve")
    assert approved.status_code == 200
    assert approved.json()["status"] == "succeeded"
    assert _pay(api, http, "key-1").json()["status"] == "succeeded"  # a replay never charges again

    bills = http.get(f"{api}/accounts/1000001/bills?limit=3").json()["bills"]
    assert [(b["period"], b["paid_amount"], b["status"]) for b in bills[:2]] == [
        ("2026-11", "0", "unpaid"), ("2026-10", "7000", "paid")]
    assert http.get(f"{api}/accounts/1000001/balance").json()["amount"] == "5500"
    history = http.get(f"{api}/accounts/1000001/payments").json()["payments"]
    assert [p["payment_id"] for p in history].count(payment["payment_id"]) == 1
    assert history[0]["payment_id"] == payment["payment_id"]
    assert history[0]["reference"] == approved.json()["reference"]


def test_amount_goes_to_the_oldest_bills_first(api: str, http: requests.Session) -> None:
    payment = _pay(api, http, "partial", amount="9000").json()
    http.post(f"{api}/payments/{payment['payment_id']}/approve")
    bills = http.get(f"{api}/accounts/1000001/bills?limit=2").json()["bills"]
    assert [(b["paid_amount"], b["status"]) for b in bills] == [("2000", "partial"), ("7000", "paid")]
    assert http.get(f"{api}/accounts/1000001/balance").json() == {
        "account_number": "1000001", "amount": "3500", "currency": "XOF", "unpaid_bills": 1,
        "oldest_due_on": "2026-12-05"}


def test_decided_once_only(api: str, http: requests.Session) -> None:
    payment_id = _pay(api, http, "once").json()["payment_id"]
    declined = http.post(f"{api}/payments/{payment_id}/decline")
    assert declined.status_code == 200
    assert declined.json()["status"] == "failed"
    assert declined.json()["failure_reason"] == "declined_by_customer"
    for action in ("approve", "decline"):
        again = http.post(f"{api}/payments/{payment_id}/{action}")
        assert again.status_code == 409
        assert again.json()["error"] == "already_decided"
    assert http.get(f"{api}/payments/{payment_id}").json()["status"] == "failed"
    assert http.get(f"{api}/accounts/1000001/balance").json()["amount"] == "12500"
    assert http.post(f"{api}/payments/PAY-NOPE/approve").status_code == 404


def test_a_payment_is_found_by_the_payers_key_and_looking_never_starts_one(api: str, http: requests.Session) -> None:
    assert http.get(f"{api}/payments", params={"idempotency_key": "lost-1"}).json() == {"payments": []}
    started = _pay(api, http, "lost-1").json()
    [found] = http.get(f"{api}/payments", params={"idempotency_key": "lost-1"}).json()["payments"]
    assert (found["payment_id"], found["idempotency_key"], found["status"]) == (started["payment_id"], "lost-1",
                                                                                "pending")
    assert http.get(f"{api}/payments", params={"idempotency_key": "lost-2"}).json() == {"payments": []}
    missing = http.get(f"{api}/payments")
    assert (missing.status_code, missing.json()["error"]) == (400, "idempotency_key_required")


def test_callback_is_signed_and_resent_with_the_same_event(
    api: str, http: requests.Session, receiver: CallbackReceiver
) -> None:
    payment_id = _pay(api, http, "cb", callback_url=receiver.url).json()["payment_id"]
    pending_resend = http.post(f"{api}/payments/{payment_id}/resend-callback")
    assert pending_resend.status_code == 409
    http.post(f"{api}/payments/{payment_id}/approve")

    call = receiver.next()
    _check_signature(call.headers[SIGNATURE_HEADER], call.body)
    event = json.loads(call.body)
    assert set(event) == {"event_id", "payment_id", "idempotency_key", "status", "amount", "currency", "purpose",
                          "account_number", "msisdn", "wallet", "reference", "token", "failure_reason", "occurred_at"}
    assert (event["payment_id"], event["status"], event["amount"]) == (payment_id, "succeeded", "7000")
    assert event["idempotency_key"] == "cb"      # the payer's key, echoed: it finds a payment whose id it lost
    assert event["reference"].startswith("MM") and len(event["reference"]) == 12
    assert event["occurred_at"].endswith("Z")

    resent = http.post(f"{api}/payments/{payment_id}/resend-callback")
    assert resent.status_code == 202
    assert resent.json()["event_id"] == event["event_id"]
    duplicate = receiver.next()
    _check_signature(duplicate.headers[SIGNATURE_HEADER], duplicate.body)
    assert json.loads(duplicate.body)["event_id"] == event["event_id"]


def test_callback_is_retried_until_2xx(api: str, http: requests.Session, receiver: CallbackReceiver) -> None:
    receiver.fail_first = 2
    payment_id = _pay(api, http, "retry", callback_url=receiver.url).json()["payment_id"]
    http.post(f"{api}/payments/{payment_id}/decline", json={"reason": "timeout"})
    bodies = [receiver.next().body for _ in range(3)]
    assert len({json.loads(b)["event_id"] for b in bodies}) == 1
    assert json.loads(bodies[0])["failure_reason"] == "timeout"
    time.sleep(0.3)
    assert receiver.calls.empty()


def test_prepaid_purchase_issues_a_token_and_credit(api: str, http: requests.Session) -> None:
    assert http.get(f"{api}/meters/MTR-3000001/credit").json()["credit_kwh"] == "42.5"
    rejected = _pay(api, http, "pp-postpaid", purpose="prepaid")
    assert rejected.status_code == 422
    payment = _pay(api, http, "pp", account_number="3000001", msisdn="+221770000003", amount="2000",
                   purpose="prepaid").json()
    done = http.post(f"{api}/payments/{payment['payment_id']}/approve").json()
    assert done["status"] == "succeeded"
    assert len(done["token"]) == 20 and done["token"].isdigit()
    credit = http.get(f"{api}/meters/MTR-3000001/credit").json()
    assert credit["credit_kwh"] == "62.5"
    assert http.get(f"{api}/payments/{payment['payment_id']}").json()["token"] == done["token"]


def test_auto_approval_checks_the_wallet(backoffice_config: BackofficeConfig, serve_with: Callable[..., str],
        http: requests.Session) -> None:
    api = serve_with(backoffice_config, payment_approval="auto", payment_delay=0.1) + "/api/v1"
    ok = _pay(api, http, "auto-ok").json()["payment_id"]
    too_much = _pay(api, http, "auto-poor", account_number="3000001", msisdn="+221770000003", amount="5000",
                    purpose="prepaid").json()["payment_id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = [http.get(f"{api}/payments/{p}").json() for p in (ok, too_much)]
        if all(s["status"] != "pending" for s in states):
            break
        time.sleep(0.05)
    assert states[0]["status"] == "succeeded"
    assert (states[1]["status"], states[1]["failure_reason"]) == ("failed", "insufficient_funds")
    assert http.post(f"{api}/payments/{ok}/approve").status_code == 409


def test_concurrent_retries_and_approvals_still_charge_once(api: str) -> None:
    def initiate(_: int) -> tuple[int, str]:
        with requests.Session() as http:
            answer = _pay(api, http, "racing-key")
            return answer.status_code, answer.json()["payment_id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(initiate, range(8)))
    assert len({payment_id for _, payment_id in results}) == 1
    assert sorted(status for status, _ in results).count(202) == 1
    payment_id = results[0][1]

    def approve(_: int) -> int:
        with requests.Session() as http:
            return http.post(f"{api}/payments/{payment_id}/approve").status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(approve, range(4)))
    assert statuses == [200, 409, 409, 409]
    with requests.Session() as http:
        assert http.get(f"{api}/accounts/1000001/balance").json()["amount"] == "5500"
        history = http.get(f"{api}/accounts/1000001/payments").json()["payments"]
        assert [p["payment_id"] for p in history].count(payment_id) == 1


# ---------------------------------------------------------------- demo wallets per operator
def test_each_operator_refuses_what_its_demo_wallet_cannot_pay(api: str, http: requests.Session) -> None:
    refusals = {
        "free_money": _pay(api, http, "w-none", wallet="free_money"),                  # no wallet there
        "wave": _pay(api, http, "w-poor", wallet="wave"),                              # 5 000 < 7 000
        "limit": _pay(api, http, "w-limit", account_number="3000001", msisdn="+221770000003",
                      amount="250000", purpose="prepaid", wallet="orange_money"),       # above 200 000
    }
    assert {k: (r.status_code, r.json()["error"]) for k, r in refusals.items()} == {
        "free_money": (422, "wallet_not_found"), "wave": (422, "insufficient_funds"),
        "limit": (422, "wallet_limit_exceeded")}
    assert _pay(api, http, "w-bad", wallet="monopoly_money").status_code == 422
    # A refused request started nothing: the same key may be used again once the customer picks another wallet.
    fine = _pay(api, http, "w-poor", wallet="orange_money")
    assert fine.status_code == 202 and fine.json()["wallet"] == "orange_money"


def test_approval_debits_the_chosen_wallet_only(api: str, http: requests.Session,
                                                backoffice_app: Any) -> None:
    from backoffice.models import MobileWallet
    payment = _pay(api, http, "w-debit", wallet="wave", amount="3000").json()
    assert http.post(f"{api}/payments/{payment['payment_id']}/approve").status_code == 200
    with backoffice_app.extensions["backoffice"].sessions() as db:
        assert db.get(MobileWallet, ("wave", "+221770000001")).balance == 2000
        assert db.get(MobileWallet, ("orange_money", "+221770000001")).balance == 50000


def test_auto_approval_rechecks_the_chosen_wallet(backoffice_config: BackofficeConfig,
                                                  serve_with: Callable[..., str], http: requests.Session) -> None:
    api = serve_with(backoffice_config, payment_approval="auto", payment_delay=0.3) + "/api/v1"
    first = _pay(api, http, "w-a", wallet="wave", amount="4000").json()["payment_id"]
    second = _pay(api, http, "w-b", wallet="wave", amount="4000").json()["payment_id"]   # both fit alone
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = {p: http.get(f"{api}/payments/{p}").json() for p in (first, second)}
        if all(s["status"] != "pending" for s in states.values()):
            break
        time.sleep(0.05)
    outcomes = sorted((s["status"], s["failure_reason"]) for s in states.values())
    assert outcomes == [("failed", "insufficient_funds"), ("succeeded", None)]
