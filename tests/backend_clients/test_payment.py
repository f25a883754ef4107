"""PaymentClient against the reference back office (manual approval)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from backend_clients import PaymentClient
from dialogs.backends import Conflict, NotFound, PaymentIntent, Rejected

ORDER: dict[str, Any] = {"account_number": "1000001", "msisdn": "+221770000001", "amount": Decimal(5500),
                             "purpose": "bill", "callback_url": "http://127.0.0.1:9/callback"}


def test_initiate_is_idempotent_by_key(payments: PaymentClient) -> None:
    first = payments.initiate(**ORDER, idempotency_key="pay-key-1")
    assert isinstance(first, PaymentIntent)
    assert (first.status, first.amount, first.currency, first.purpose) == ("pending", Decimal(5500), "XOF", "bill")
    assert first.account_number == "1000001" and first.reference is None and first.token is None

    again = payments.initiate(**ORDER, idempotency_key="pay-key-1")
    assert again.payment_id == first.payment_id
    assert payments.status(first.payment_id) == first


def test_same_key_with_another_body_is_a_conflict(payments: PaymentClient) -> None:
    payments.initiate(**ORDER, idempotency_key="pay-key-2")
    with pytest.raises(Conflict):
        payments.initiate(**{**ORDER, "amount": Decimal(7000)}, idempotency_key="pay-key-2")


def test_status_follows_the_customers_approval(payments: PaymentClient, backoffice_url: str) -> None:
    intent = payments.initiate(**ORDER, idempotency_key="pay-key-3")
    # The customer approving on the handset, simulated through the back office's own endpoint.
    requests.post(f"{backoffice_url}/api/v1/payments/{intent.payment_id}/approve", timeout=5).raise_for_status()
    done = payments.status(intent.payment_id)
    assert done.status == "succeeded"
    assert done.reference is not None and done.reference.startswith("MM")


def test_invalid_request_is_rejected_and_unknown_payment_not_found(payments: PaymentClient) -> None:
    with pytest.raises(Rejected) as caught:
        payments.initiate(**{**ORDER, "purpose": "lottery"}, idempotency_key="pay-key-4")
    assert caught.value.reason
    with pytest.raises(NotFound):
        payments.status("PAY-DOESNOTEXIST")


def test_a_wallet_refusal_carries_the_providers_reason(payments: PaymentClient) -> None:
    with pytest.raises(Rejected) as caught:
        payments.initiate(**ORDER, idempotency_key="pay-key-5", wallet="free_money")
    assert caught.value.code == "wallet_not_found"
    chosen = payments.initiate(**ORDER, idempotency_key="pay-key-6", wallet="orange_money")
    assert chosen.status == "pending" and chosen.msisdn == "+221770000001"
