"""BillingClient against the seeded reference back office."""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal

import pytest

from backend_clients import BillingClient
from dialogs.backends import (
    Account,
    Arrangement,
    Balance,
    Bill,
    NotFound,
    PaymentRecord,
    Rejected,
)


def test_reads_accounts_balance_bills_and_payments(billing: BillingClient) -> None:
    accounts = billing.accounts_for_phone("+221770000002")
    assert [a.account_number for a in accounts] == ["2000001", "2000002", "2000003"]
    assert all(isinstance(a, Account) and a.category == "business" and a.language == "en" for a in accounts)
    assert accounts[1].zone == "THIES-NORD" and accounts[1].meter_id == "MTR-2000002"
    assert billing.accounts_for_phone("+221779999999") == []

    account = billing.account("1000001")
    assert account == Account("1000001", account.customer_name, "residential", "postpaid", "DKR-MEDINA",
                              "MTR-1000001", "fr", "+221770000001")

    balance = billing.balance("1000001")
    assert isinstance(balance, Balance)
    assert balance.amount == Decimal(12500) and isinstance(balance.amount, Decimal)
    assert (balance.currency, balance.unpaid_bills) == ("XOF", 2)
    assert isinstance(balance.oldest_due_on, date)

    bills = billing.bills("1000001")
    assert len(bills) == 12 and all(isinstance(b, Bill) for b in bills)
    assert [b.period for b in bills] == sorted((b.period for b in bills), reverse=True)  # most recent first
    assert (bills[0].period, bills[0].amount, bills[0].status) == ("2026-11", Decimal(5500), "unpaid")
    assert (bills[1].period, bills[1].amount, bills[1].status) == ("2026-10", Decimal(7000), "unpaid")
    assert isinstance(bills[0].issued_on, date) and bills[0].due_on > bills[0].issued_on
    assert len(billing.bills("1000001", limit=3)) == 3

    records = billing.payments("1000001", limit=5)
    assert 0 < len(records) <= 5 and all(isinstance(p, PaymentRecord) for p in records)
    assert [p.paid_at for p in records] == sorted((p.paid_at for p in records), reverse=True)
    assert records[0].paid_at.tzinfo == UTC


def test_verify_last_bill(billing: BillingClient) -> None:
    assert billing.verify_last_bill("1000001", Decimal(5500)) is True
    assert billing.verify_last_bill("1000001", Decimal(7000)) is False


def test_unknown_account_is_not_found(billing: BillingClient) -> None:
    for call in (billing.account, billing.balance, billing.bills, billing.payments, billing.arrangements):
        with pytest.raises(NotFound):
            call("9999999")


def test_arrangements_create_list_and_idempotent_create(billing: BillingClient) -> None:
    assert billing.arrangements("1000001") == []
    created = billing.create_arrangement("1000001", "instalments", 3, idempotency_key="arr-key-1")
    assert isinstance(created, Arrangement)
    assert (created.kind, created.months, created.status) == ("instalments", 3, "active")
    assert len(created.schedule) == 3
    assert sum(amount for _, amount in created.schedule) == Decimal(12500)
    assert all(isinstance(due, date) and isinstance(amount, Decimal) for due, amount in created.schedule)

    again = billing.create_arrangement("1000001", "instalments", 3, idempotency_key="arr-key-1")
    assert again.arrangement_id == created.arrangement_id
    assert billing.arrangements("1000001") == [created]


def test_invalid_arrangement_is_rejected_with_the_reason(billing: BillingClient) -> None:
    with pytest.raises(Rejected) as caught:
        billing.create_arrangement("1000001", "instalments", 60, idempotency_key="arr-key-2")
    assert "months" in caught.value.reason


def test_balance_and_arrangements_are_read_together_and_fresh(billing: BillingClient) -> None:
    found, arrangements = billing.balance_and_arrangements("1000001")
    assert (found, arrangements) == (billing.balance("1000001"), [])
    made = billing.create_arrangement("1000001", "deferral", 1, idempotency_key="arr-key-3")
    assert billing.balance_and_arrangements("1000001") == (found, [made])   # the very next read shows it
    with pytest.raises(NotFound):
        billing.balance_and_arrangements("9999999")
