"""Billing over HTTP: demo figures, unknown things, identity check, payment history, arrangements."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import flask
import pytest
import requests

from backoffice import BackofficeConfig
from backoffice.bill_run import issue_bill


def test_health(backoffice_url: str, http: requests.Session) -> None:
    answer = http.get(backoffice_url + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_customer_with_three_accounts(api: str, http: requests.Session) -> None:
    answer = http.get(f"{api}/customers/by-phone/+221770000002")
    assert answer.status_code == 200
    customer = answer.json()
    assert customer["language"] == "en"
    assert [a["account_number"] for a in customer["accounts"]] == ["2000001", "2000002", "2000003"]
    assert {a["zone"] for a in customer["accounts"]} == {"DKR-PLATEAU", "THIES-NORD"}
    assert all(a["category"] == "business" and a["kind"] == "postpaid" for a in customer["accounts"])


def test_phone_number_may_be_url_encoded_or_without_plus(api: str, http: requests.Session) -> None:
    assert http.get(f"{api}/customers/by-phone/%2B221770000001").json()["customer_id"] == "CUS-000001"
    assert http.get(f"{api}/customers/by-phone/221770000001").json()["customer_id"] == "CUS-000001"


def test_account(api: str, http: requests.Session) -> None:
    assert http.get(f"{api}/accounts/3000001").json() == {
        "account_number": "3000001", "customer_name": "Moussa Diop", "category": "residential",
        "kind": "prepaid", "zone": "DKR-PARCELLES", "meter_id": "MTR-3000001", "language": "fr",
        "phone": "+221770000003",
    }


def test_balance_of_the_residential_customer(api: str, http: requests.Session) -> None:
    assert http.get(f"{api}/accounts/1000001/balance").json() == {
        "account_number": "1000001", "amount": "12500", "currency": "XOF", "unpaid_bills": 2,
        "oldest_due_on": "2026-11-04",
    }


def test_twelve_bills_most_recent_first(api: str, http: requests.Session) -> None:
    bills = http.get(f"{api}/accounts/1000001/bills").json()["bills"]
    assert len(bills) == 12
    assert [b["period"] for b in bills[:2]] == ["2026-11", "2026-10"]
    assert [(b["amount"], b["status"]) for b in bills[:3]] == [("5500", "unpaid"), ("7000", "unpaid"),
                                                              ("6400", "paid")]
    assert len(http.get(f"{api}/accounts/1000001/bills?limit=3").json()["bills"]) == 3
    for number in ("2000001", "2000002", "2000003"):
        assert len(http.get(f"{api}/accounts/{number}/bills").json()["bills"]) == 12


def test_verify_with_the_last_bill_amount(api: str, http: requests.Session) -> None:
    assert http.post(f"{api}/accounts/1000001/verify", json={"last_bill_amount": "5500"}).json() == {"verified": True}
    assert http.post(f"{api}/accounts/1000001/verify", json={"last_bill_amount": "7000"}).json() == {"verified": False}


def test_payment_history(api: str, http: requests.Session) -> None:
    payments = http.get(f"{api}/accounts/1000001/payments").json()["payments"]
    assert len(payments) == 5
    assert payments == sorted(payments, key=lambda p: p["paid_at"], reverse=True)
    assert all(p["reference"].startswith("MM") and len(p["reference"]) == 12 for p in payments)


def test_unknown_things_are_404_json(api: str, http: requests.Session) -> None:
    for path in ("/customers/by-phone/+221779999999", "/accounts/9999999", "/accounts/9999999/balance",
                 "/accounts/9999999/bills", "/accounts/9999999/payments", "/accounts/9999999/arrangements",
                 "/meters/MTR-0/readings/latest", "/meters/MTR-0/consumption", "/meters/MTR-1000001/credit",
                 "/payments/PAY-NOPE", "/tickets/INC-2222", "/no/such/path"):
        answer = http.get(api + path)
        assert answer.status_code == 404, path
        assert answer.headers["Content-Type"] == "application/json", path
        assert set(answer.json()) == {"error", "message"}, path


def test_arrangement_is_idempotent(api: str, http: requests.Session) -> None:
    url = f"{api}/accounts/1000001/arrangements"
    first = http.post(url, json={"kind": "instalments", "months": 3}, headers={"Idempotency-Key": "arr-1"})
    assert first.status_code == 201
    arrangement = first.json()
    assert [s["amount"] for s in arrangement["schedule"]] == ["4168", "4166", "4166"]  # the remainder on the first
    again = http.post(url, json={"kind": "instalments", "months": 3}, headers={"Idempotency-Key": "arr-1"})
    assert again.status_code == 200
    assert again.json() == arrangement
    other = http.post(url, json={"kind": "deferral", "months": 1}, headers={"Idempotency-Key": "arr-1"})
    assert other.status_code == 409
    assert http.get(url).json()["arrangements"] == [arrangement]
    assert http.post(url, json={"kind": "deferral", "months": 1}).status_code == 400
    bad = http.post(url, json={"kind": "deferral", "months": 7}, headers={"Idempotency-Key": "arr-2"})
    assert bad.status_code == 422


def test_the_balance_can_bring_the_accounts_arrangements_in_the_same_answer(api: str, http: requests.Session) -> None:
    balance = f"{api}/accounts/1000001/balance"
    assert http.get(balance, params={"include": "arrangements"}).json()["arrangements"] == []
    made = http.post(f"{api}/accounts/1000001/arrangements", json={"kind": "deferral", "months": 1},
                     headers={"Idempotency-Key": "arr-with-balance"}).json()
    assert http.get(balance, params={"include": "arrangements"}).json() == {
        "account_number": "1000001", "amount": "12500", "currency": "XOF", "unpaid_bills": 2,
        "oldest_due_on": "2026-11-04", "arrangements": [made],
    }
    assert "arrangements" not in http.get(balance).json()           # asked for nothing more, told nothing more
    wrong = http.get(balance, params={"include": "bills"})
    assert (wrong.status_code, wrong.json()["error"]) == (422, "invalid")
    assert http.get(f"{api}/accounts/9999999/balance", params={"include": "arrangements"}).status_code == 404


@pytest.mark.parametrize("product_clock", [datetime(2027, 3, 31, 23, 59, 59, tzinfo=UTC)], ids=["march-31st-23:59:59"],
                         indirect=True)
def test_an_arrangement_is_dated_by_the_back_offices_clock_and_clipped_to_shorter_months(
        api: str, http: requests.Session) -> None:
    made = http.post(f"{api}/accounts/1000001/arrangements", json={"kind": "instalments", "months": 3},
                     headers={"Idempotency-Key": "arr-month-end"})
    assert made.status_code == 201, made.text
    assert made.json()["created_on"] == "2027-03-31"
    assert [s["due_on"] for s in made.json()["schedule"]] == ["2027-04-30", "2027-05-31", "2027-06-30"]


def test_a_bill_issued_without_a_period_belongs_to_the_month_of_its_day(backoffice_app: flask.Flask,
                                                                        api: str, http: requests.Session) -> None:
    sessions = backoffice_app.extensions["backoffice"].sessions
    issued = issue_bill(sessions, "1000001", Decimal(9800), kwh=Decimal(61), due=date(2027, 2, 15),
                        today=date(2027, 1, 31))
    assert issued["bill_id"] == "B-1000001-2027-01"
    [bill] = [b for b in http.get(f"{api}/accounts/1000001/bills").json()["bills"] if b["period"] == "2027-01"]
    assert (bill["issued_on"], bill["due_on"], bill["amount"]) == ("2027-01-31", "2027-02-15", "9800")


def test_api_key_is_enforced_when_set(backoffice_config: BackofficeConfig, serve_with: Callable[..., str],
        http: requests.Session) -> None:
    base = serve_with(backoffice_config, api_key="s3cret")
    missing = http.get(f"{base}/api/v1/accounts/1000001")
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert http.get(f"{base}/api/v1/accounts/1000001", headers={"X-Api-Key": "wrong"}).status_code == 401
    assert http.get(f"{base}/api/v1/accounts/1000001", headers={"X-Api-Key": "s3cret"}).status_code == 200
    assert http.get(f"{base}/healthz").status_code == 200
