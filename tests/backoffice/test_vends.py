"""``POST /meters/{meter_id}/vends``: a token for money received outside the mobile-money flow, once per payment.

An agent settled a prepaid purchase by hand; the product asks the vending system for the customer's 20 digits.
A retry (a lost answer, the worker, two supervisors) gets the same token and the meter is credited once; the same
key with another body is refused as billing's posts are; bad input gets a clean JSON 4xx.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests

METER = "MTR-3000001"


def _vend(api: str, http: requests.Session, key: str, body: Any, meter: str = METER) -> requests.Response:
    return http.post(f"{api}/meters/{meter}/vends", json=body, headers={"Idempotency-Key": key})


def _credit(api: str, http: requests.Session) -> dict[str, Any]:
    answer: dict[str, Any] = http.get(f"{api}/meters/{METER}/credit").json()
    return answer


def test_a_vend_credits_the_meter_once_and_a_retry_gets_the_same_token(api: str, http: requests.Session) -> None:
    before = Decimal(_credit(api, http)["credit_kwh"])
    first = _vend(api, http, "vend-pay-1", {"payment_id": "MM7KQ2ZP9XW4", "amount": "2000"})
    assert first.status_code == 201
    vend = first.json()
    assert len(vend["token"]) == 20 and vend["token"].isdigit() and vend["kwh"] == "20"

    again = _vend(api, http, "vend-pay-1", {"amount": "2000", "payment_id": "MM7KQ2ZP9XW4"})
    other_key = _vend(api, http, "vend-pay-2", {"payment_id": "MM7KQ2ZP9XW4", "amount": "2000"})

    assert (again.status_code, again.json()) == (200, vend)
    assert (other_key.status_code, other_key.json()) == (200, vend)
    credit = _credit(api, http)
    assert Decimal(credit["credit_kwh"]) == before + 20
    # The customer's balance screen reads it as the last purchase, with its token.
    assert (credit["last_purchase"]["token"], credit["last_purchase"]["amount"]) == (vend["token"], "2000")


def test_a_key_reused_with_another_body_or_a_payment_for_another_amount_is_refused(api: str,
                                                                                    http: requests.Session) -> None:
    assert _vend(api, http, "vend-pay-3", {"payment_id": "MM7KQ2ZP9XW5", "amount": "1000"}).status_code == 201
    before = _credit(api, http)["credit_kwh"]

    reused = _vend(api, http, "vend-pay-3", {"payment_id": "MM7KQ2ZP9XW5", "amount": "5000"})
    other = _vend(api, http, "vend-pay-4", {"payment_id": "MM7KQ2ZP9XW5", "amount": "5000"})

    assert (reused.status_code, reused.json()["error"]) == (422, "idempotency_key_reused")
    assert (other.status_code, other.json()["error"]) == (409, "payment_already_vended")
    assert _credit(api, http)["credit_kwh"] == before


def test_bad_input_gets_a_clean_json_refusal_and_vends_nothing(api: str, http: requests.Session) -> None:
    before = _credit(api, http)["credit_kwh"]
    cases = [
        ("vend-bad-1", {"payment_id": "P1", "amount": "2000"}, "MTR-1000001", 404, "meter_not_found"),  # postpaid
        ("vend-bad-2", {"payment_id": "P1", "amount": "2000"}, "MTR-NOPE", 404, "meter_not_found"),
        ("vend-bad-3", {"payment_id": "P1", "amount": "99"}, METER, 422, "invalid"),
        ("vend-bad-4", {"payment_id": "P1", "amount": "2000000.5"}, METER, 422, "invalid"),
        ("vend-bad-5", {"payment_id": "P1", "amount": 1e30}, METER, 422, "invalid"),
        ("vend-bad-6", {"payment_id": "P" * 41, "amount": "2000"}, METER, 422, "invalid"),
        ("vend-bad-7", {"amount": "2000"}, METER, 422, "invalid"),
        ("vend-bad-8", {"payment_id": "P1", "amount": "2000", "currency": "EUR"}, METER, 422, "invalid"),
        ("vend-bad-9", ["not", "an", "object"], METER, 400, "bad_json"),
    ]
    for key, body, meter, status, code in cases:
        answer = _vend(api, http, key, body, meter)
        assert (answer.status_code, answer.headers["Content-Type"], answer.json()["error"]) == (
            status, "application/json", code), body
    keyless = http.post(f"{api}/meters/{METER}/vends", json={"payment_id": "P1", "amount": "2000"})
    assert (keyless.status_code, keyless.json()["error"]) == (400, "idempotency_key_required")
    assert _credit(api, http)["credit_kwh"] == before


def _purchase(api: str, http: requests.Session, key: str) -> str:
    """Moussa's 2 000 FCFA prepaid purchase with the provider (decided by hand in these tests): its id."""
    started = http.post(f"{api}/payments", headers={"Idempotency-Key": key}, json={
        "account_number": "3000001", "msisdn": "+221770000003", "amount": "2000", "purpose": "prepaid",
        "wallet": "wave"})
    assert started.status_code == 202, started.text
    payment_id: str = started.json()["payment_id"]
    return payment_id


def test_a_purchase_vended_by_hand_then_approved_late_keeps_its_token_and_credits_once(
        api: str, http: requests.Session) -> None:
    payment_id = _purchase(api, http, "late-approval-1")
    before = Decimal(_credit(api, http)["credit_kwh"])
    vended = _vend(api, http, "vend-late-1", {"payment_id": payment_id, "amount": "2000"}).json()

    assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 200

    assert http.get(f"{api}/payments/{payment_id}").json()["token"] == vended["token"]
    assert Decimal(_credit(api, http)["credit_kwh"]) == before + 20


def test_a_purchase_the_provider_approved_unheard_gets_its_own_token_when_vended_by_hand(
        api: str, http: requests.Session) -> None:
    payment_id = _purchase(api, http, "approved-first-1")
    assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 200
    approved = http.get(f"{api}/payments/{payment_id}").json()["token"]
    before = Decimal(_credit(api, http)["credit_kwh"])

    vended = _vend(api, http, "vend-approved-1", {"payment_id": payment_id, "amount": "2000"})

    assert (vended.status_code, vended.json()["token"]) == (201, approved)
    assert Decimal(_credit(api, http)["credit_kwh"]) == before
