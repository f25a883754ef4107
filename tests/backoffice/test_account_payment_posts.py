"""Billing's ``POST /accounts/{n}/payments`` keeps its ``Idempotency-Key`` (IETF httpapi-idempotency-key-header).

A payer posting money received outside mobile money (an agent's settlement) may retry after a lost answer: the same
key and body get the first answer again and nothing is counted twice. The same key with another body is a mistake
on the payer's side (a key reused for another payment): it gets a clear 422 ``idempotency_key_reused`` and billing
records nothing, where before it counted a second payment.
"""

from __future__ import annotations

from typing import Any

import requests

from tests.backoffice.conftest import start_payment


def _post(api: str, http: requests.Session, key: str, body: Any) -> requests.Response:
    return http.post(f"{api}/accounts/1000001/payments", json=body, headers={"Idempotency-Key": key})


def _due(api: str, http: requests.Session) -> str:
    return str(http.get(f"{api}/accounts/1000001/balance").json()["amount"])


def _listed(api: str, http: requests.Session) -> list[str]:
    return [p["payment_id"] for p in http.get(f"{api}/accounts/1000001/payments?limit=20").json()["payments"]]


def test_the_same_key_and_body_get_the_first_answer_again(api: str, http: requests.Session) -> None:
    body = {"payment_id": "MM7KQ2ZP9XW4", "amount": "5000", "reference": "MM7KQ2ZP9XW4"}
    first = _post(api, http, "post-pay-1", body)
    assert first.status_code == 201 and _due(api, http) == "7500"

    # A retry after a lost answer, the fields in another order: the same body.
    again = _post(api, http, "post-pay-1", dict(reversed(list(body.items()))))

    assert (again.status_code, again.json()) == (201, first.json())
    assert _due(api, http) == "7500" and _listed(api, http).count("MM7KQ2ZP9XW4") == 1


def test_the_same_key_with_another_body_is_refused_and_nothing_is_counted(api: str, http: requests.Session) -> None:
    assert _post(api, http, "post-pay-2", {"payment_id": "MM7KQ2ZP9XW4", "amount": "5000"}).status_code == 201

    for other in ({"payment_id": "MM0000ANOTHER", "amount": "5000"}, {"payment_id": "MM7KQ2ZP9XW4", "amount": "500"},
                  {"payment_id": "MM7KQ2ZP9XW4", "amount": "5000", "channel": "counter"}):
        refused = _post(api, http, "post-pay-2", other)
        assert refused.status_code == 422, other
        assert refused.json() == {"error": "idempotency_key_reused", "message": (
            "this Idempotency-Key was used with another body; send a new key for another payment")}

    assert _due(api, http) == "7500" and "MM0000ANOTHER" not in _listed(api, http)


def test_a_new_key_for_a_payment_already_received_counts_it_once(api: str, http: requests.Session) -> None:
    assert _post(api, http, "post-pay-3", {"payment_id": "MM7KQ2ZP9XW4", "amount": "5000"}).status_code == 201
    second = _post(api, http, "post-pay-4", {"payment_id": "MM7KQ2ZP9XW4", "amount": "5000"})
    assert second.status_code == 200 and _due(api, http) == "7500"
    # ... and that key's first answer (200) is its answer again.
    assert _post(api, http, "post-pay-4", {"payment_id": "MM7KQ2ZP9XW4", "amount": "5000"}).status_code == 200
    assert _post(api, http, "post-pay-5", {"payment_id": "MM7KQ2ZP9XW4", "amount": "900"}).status_code == 409


def _started(api: str, http: requests.Session, key: str) -> str:
    """Awa's 5 000 FCFA bill payment started with the provider under the payer's key (decided by hand here)."""
    return start_payment(api, http, key, account_number="1000001", msisdn="+221770000001", amount="5000",
                         purpose="bill", wallet="orange_money")


def test_posted_under_the_receipts_reference_the_providers_late_approval_pays_the_bills_once(
        api: str, http: requests.Session) -> None:
    """The agent typed the receipt's reference, not the provider's id: the payer's key names the same money, so
    the payment is recorded under the provider's id and its approval later counts nothing again."""
    payment_id = _started(api, http, "bill-by-receipt-1")
    posted = _post(api, http, "post-receipt-1", {"payment_id": "MMRECEIPT010", "payment_key": "bill-by-receipt-1",
                                                 "amount": "5000"})
    assert (posted.status_code, posted.json()["payment_id"], posted.json()["reference"]) == (
        201, payment_id, "MMRECEIPT010")
    assert _due(api, http) == "7500"

    assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 200

    assert _due(api, http) == "7500" and _listed(api, http).count(payment_id) == 1
    assert "MMRECEIPT010" not in _listed(api, http)


def test_approved_first_a_post_under_the_receipts_reference_counts_nothing_again(api: str,
                                                                                  http: requests.Session) -> None:
    payment_id = _started(api, http, "bill-by-receipt-2")
    assert http.post(f"{api}/payments/{payment_id}/approve").status_code == 200
    assert _due(api, http) == "7500"

    posted = _post(api, http, "post-receipt-2", {"payment_id": "MMRECEIPT011", "payment_key": "bill-by-receipt-2",
                                                 "amount": "5000"})

    assert (posted.status_code, posted.json()["payment_id"]) == (200, payment_id)
    assert _due(api, http) == "7500" and _listed(api, http).count(payment_id) == 1
    # A key naming a payment of another amount is other money: the post stands on its own reference.
    other = _post(api, http, "post-receipt-3", {"payment_id": "MMRECEIPT012", "payment_key": "bill-by-receipt-2",
                                                "amount": "2500"})
    assert (other.status_code, other.json()["payment_id"]) == (201, "MMRECEIPT012") and _due(api, http) == "5000"


def test_a_post_under_another_accounts_payment_id_is_refused_and_that_purchase_still_gets_its_token(
        api: str, http: requests.Session) -> None:
    """Awa's account posted under the provider's id of Moussa's prepaid purchase: recorded, it made Moussa's
    approval fail (the id taken) and would have paid Awa's bills with his money."""
    moussa = start_payment(api, http, "moussa-credit-post-1", account_number="3000001", msisdn="+221770000003",
                           amount="2000", purpose="prepaid", wallet="wave")

    refused = _post(api, http, "post-moussa-1", {"payment_id": moussa, "amount": "2000"})

    assert (refused.status_code, refused.json()["error"]) == (409, "payment_of_another_account")
    assert _due(api, http) == "12500" and moussa not in _listed(api, http)
    assert http.post(f"{api}/payments/{moussa}/approve").status_code == 200
    assert len(http.get(f"{api}/payments/{moussa}").json()["token"]) == 20
