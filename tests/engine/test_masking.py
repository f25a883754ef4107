"""What stays readable in the audit and the logs, and what never does.

A supervisor's reason is kept in the security audit and shown on the customer's page: "refund 15000 FCFA" must read
as written, while the phone and account numbers in it are masked however they were typed (E.164, ``00``, the local
nine digits grouped by twos, the back office's seven-digit account number). Log lines are stricter: any five digits
or more are masked (a one-time code has six), but for an amount written with its currency.
"""

from __future__ import annotations

import pytest

from engine.masking import mask_numbers, mask_typed_numbers


@pytest.mark.parametrize(("typed", "kept"), [
    ("refund 15000 FCFA", "refund 15000 FCFA"),
    ("refund 150 000 FCFA promised", "refund 150 000 FCFA promised"),
    ("paid 185.200 F CFA in cash", "paid 185.200 F CFA in cash"),
    ("credited 2500000F by hand", "credited 2500000F by hand"),
    ("XOF 1250000 sent back", "XOF 1250000 sent back"),
    ("ticket 4411, 3 bills, 150000 in all", "ticket 4411, 3 bills, 150000 in all"),
    ("wallet SMS of 2026-11-28 and 28.11.2026", "wallet SMS of 2026-11-28 and 28.11.2026"),
])
def test_an_agents_amounts_short_numbers_and_dates_stay_readable(typed: str, kept: str) -> None:
    assert mask_typed_numbers(typed) == kept


@pytest.mark.parametrize(("typed", "masked"), [
    ("called from +221 77 123 45 67", "called from +2217*****567"),
    ("called from +221770000001", "called from +2217*****001"),
    ("called from 00221 77 123 45 67", "called from +2217*****567"),
    ("her number 77 123 45 67", "her number 7*****567"),
    ("her number 77-123-45-67.", "her number 7*****567."),
    ("her number 771234567", "her number 7*****567"),
    ("221771234567 wrote", "2********567 wrote"),
    ("account 1000001 credited", "account 1***001 credited"),
    ("meter 0123456789012", "meter 0*********012"),
    # A currency beside it does not make a phone number an amount.
    ("sent 771234567 FCFA?", "sent 7*****567 FCFA?"),
    ("+221771234567 F", "+2217*****567 F"),
])
def test_phone_and_account_numbers_are_masked_however_typed(typed: str, masked: str) -> None:
    assert mask_typed_numbers(typed) == masked


def test_one_reason_with_both() -> None:
    reason = "Refund 15000 FCFA to account 1000001, customer called from +221 77 123 45 67 (ticket 4411)"
    assert mask_typed_numbers(reason) == ("Refund 15000 FCFA to account 1***001, customer called from +2217*****567 "
                                          "(ticket 4411)")


@pytest.mark.parametrize(("line", "masked"), [
    ("refund of 15000 FCFA for /accounts/1000001", "refund of 15000 FCFA for /accounts/1***001"),
    ("amount=XOF 12500 from +221770000001", "amount=XOF 12500 from +2217*****001"),
    ("code 482913 sent", "code 4**913 sent"),
    ("sms to 770000001 F", "sms to 7*****001 F"),
    ("credit of account 1000001 F CFA", "credit of account 1***001 F CFA"),
    ("balance 1250000 FCFA", "balance 1***000 FCFA"),
    ("GET /bills?n=12 on 127.0.0.1:8000", "GET /bills?n=12 on 127.0.0.1:8000"),
])
def test_log_lines_mask_every_long_number_but_an_amount_with_its_currency(line: str, masked: str) -> None:
    assert mask_numbers(line) == masked
