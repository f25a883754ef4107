"""``POST /meters/{meter_id}/vends``: a token for money received outside the mobile-money flow, once per payment.

An agent settled a prepaid purchase by hand; the product asks the vending system for the customer's 20 digits.
A retry (a lost answer, the worker, two supervisors) gets the same token and the meter is credited once; the same
key with another body is refused as billing's posts are; bad input gets a clean JSON 4xx.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from tests.backoffice.conftest import start_payment

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


def _listed(api: str, http: requests.Session) -> list[dict[str, Any]]:
    """The money received on Moussa's account, as ``GET /accounts/{n}/payments`` lists it."""
    payments: list[dict[str, Any]] = http.get(f"{api}/accounts/3000001/payments", params={"limit": 100}).json()[
        "payments"]
    return payments


def _purchase(api: str, http: requests.Session, key: str) -> str:
    """Moussa's 2 000 FCFA prepaid purchase with the provider (decided by hand in these tests): its id."""
    return start_payment(api, http, key, account_number="3000001", msisdn="+221770000003", amount="2000",
                         purpose="prepaid", wallet="wave")


def test_a_purchase_vended_by_hand_then_approved_late_keeps_its_token_and_credits_once(
        api: str, http: requests.Session) -> None:
    payment_id = _purchase(api, http, "late-approval-1")
    before = Decimal(_credit(api, http)["credit_kwh"])
    vended = _vend(api, http, "vend-late-1", {"payment_id": payment_id, "amount": "2000"}).json()

    assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 200

    assert http.get(f"{api}/payments/{payment_id}").json()["token"] == vended["token"]
    assert Decimal(_credit(api, http)["credit_kwh"]) == before + 20


@pytest.mark.parametrize("by_receipt", [False, True], ids=["under its id", "under the receipt's reference"])
def test_a_purchase_the_provider_approved_unheard_gets_its_own_token_when_vended_by_hand(
        api: str, http: requests.Session, by_receipt: bool) -> None:
    """Vended under the provider's id, or under the receipt's reference with the key the payment was started
    with: the provider's token, the meter not credited again, the approval alone listed as money received."""
    key = f"approved-first-{by_receipt}"
    payment_id = _purchase(api, http, key)
    assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 200
    approved = http.get(f"{api}/payments/{payment_id}").json()["token"]
    before = Decimal(_credit(api, http)["credit_kwh"])
    body = {"payment_id": "MMRECEIPT002", "payment_key": key} if by_receipt else {"payment_id": payment_id}

    vended = _vend(api, http, f"vend-{key}", {**body, "amount": "2000"})

    assert (vended.status_code, vended.json()["token"]) == (201, approved)
    assert Decimal(_credit(api, http)["credit_kwh"]) == before
    assert [p["channel"] for p in _listed(api, http) if p["payment_id"] == payment_id] == ["mobile_money"]


def test_a_vend_is_money_received_listed_once_with_the_accounts_payments(api: str, http: requests.Session) -> None:
    vend = _vend(api, http, "vend-listed-1", {"payment_id": "MM7KQ2ZP9XW6", "amount": "3000"}).json()
    _vend(api, http, "vend-listed-2", {"payment_id": "MM7KQ2ZP9XW6", "amount": "3000"})

    listed = [p for p in _listed(api, http) if p["payment_id"] == "MM7KQ2ZP9XW6"]

    assert listed == [{"payment_id": "MM7KQ2ZP9XW6", "reference": "MM7KQ2ZP9XW6", "amount": "3000", "currency": "XOF",
                       "paid_at": vend["vended_at"], "channel": "agent"}]


def test_vended_under_the_receipts_reference_the_late_approval_gives_the_same_token_and_credits_once(
        api: str, http: requests.Session) -> None:
    """The supervisor typed the receipt's reference, not the provider's id: the payment's key names the same money,
    so its approval later is one purchase, one token, one credit, one line in the account's payments."""
    payment_id = _purchase(api, http, "late-by-receipt-1")
    before = Decimal(_credit(api, http)["credit_kwh"])
    vended = _vend(api, http, "vend-receipt-1", {"payment_id": "MMRECEIPT001", "payment_key": "late-by-receipt-1",
                                                 "amount": "2000"})
    assert (vended.status_code, vended.json()["payment_id"]) == (201, payment_id)

    assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 200

    assert http.get(f"{api}/payments/{payment_id}").json()["token"] == vended.json()["token"]
    assert Decimal(_credit(api, http)["credit_kwh"]) == before + 20
    assert [(p["reference"], p["channel"]) for p in _listed(api, http) if p["payment_id"] == payment_id] == [
        ("MMRECEIPT001", "agent")]
    # Vended again under the reference alone (an older client), or under the key: the same vend.
    again = _vend(api, http, "vend-receipt-2", {"payment_id": "MMRECEIPT001", "payment_key": "late-by-receipt-1",
                                                "amount": "2000"})
    assert (again.status_code, again.json()["token"]) == (200, vended.json()["token"])


def test_a_key_of_another_payment_does_not_borrow_its_token(api: str, http: requests.Session) -> None:
    """A payment key whose purchase is for another amount names other money: the vend stands on its reference."""
    payment_id = _purchase(api, http, "other-amount-1")
    assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 200
    approved = http.get(f"{api}/payments/{payment_id}").json()["token"]
    before = Decimal(_credit(api, http)["credit_kwh"])

    vended = _vend(api, http, "vend-other-amount-1", {"payment_id": "MMRECEIPT003", "payment_key": "other-amount-1",
                                                      "amount": "5000"})

    assert vended.status_code == 201 and vended.json()["payment_id"] == "MMRECEIPT003"
    assert vended.json()["token"] != approved and Decimal(_credit(api, http)["credit_kwh"]) == before + 50


def test_a_vend_under_another_accounts_payment_id_is_refused_and_that_payment_still_pays_its_bills(
        api: str, http: requests.Session) -> None:
    """The reference typed for Moussa's meter is the provider's id of Awa's bill payment (a slip, or an insider):
    a vend under it would list it as Moussa's money, and Awa's approval would then pay none of her bills."""
    awa = start_payment(api, http, "awa-bill-vend-1", account_number="1000001", msisdn="+221770000001",
                        amount="5000", purpose="bill", wallet="orange_money")
    before = _credit(api, http)["credit_kwh"]

    refused = _vend(api, http, "vend-awa-1", {"payment_id": awa, "amount": "5000"})

    assert (refused.status_code, refused.json()["error"]) == (409, "payment_of_another_account")
    assert _credit(api, http)["credit_kwh"] == before
    assert http.post(f"{api}/payments/{awa}/approve").status_code == 200
    assert http.get(f"{api}/accounts/1000001/balance").json()["amount"] == "7500"
