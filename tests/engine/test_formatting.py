"""What a customer reads where a menu text has ``{placeholders}``: amounts, dates, months and kWh in their
language, a dash for what is unknown, and the text as written when its braces are broken. The same
screen filled twice (a page turn) reads the same, whatever the formatter remembered."""

from __future__ import annotations

from collections import UserDict

import pytest

from engine.formatting import TextFormatter

BILL = "{n}. {period:month} {amount:money} ({due:date}) {status:label}"
LABELS = {"unpaid": {"fr": "impayée", "en": "unpaid"}}
CONTEXT = {"n": 3, "period": "2026-10", "amount": "12500", "due": "2026-11-15", "status": "unpaid",
           "kwh": "42.5", "account": {"number": "1000001"}}


@pytest.mark.parametrize(("language", "expected"), [
    ("fr", "3. octobre 2026 12 500 FCFA (15/11/2026) impayée"),
    ("en", "3. October 2026 12,500 FCFA (15/11/2026) unpaid"),
])
def test_a_bill_line_reads_in_the_customers_language_and_the_same_on_every_page_turn(language, expected):
    fmt = TextFormatter(language, LABELS)
    assert [fmt.fill(BILL, CONTEXT) for _ in range(3)] == [expected] * 3


def test_values_of_another_bill_are_not_mixed_up_with_the_first():
    fmt = TextFormatter("fr", LABELS)
    fmt.fill(BILL, CONTEXT)
    other = dict(CONTEXT, n=4, amount="9800", period="2026-09")
    assert fmt.fill(BILL, other) == "4. septembre 2026 9 800 FCFA (15/11/2026) impayée"
    assert fmt.fill("{amount} = {amount:money}", other) == "9800 = 9 800 FCFA"   # same value, another format


def test_what_is_unknown_reads_as_a_dash():
    fmt = TextFormatter("fr")
    assert fmt.fill("Solde: {balance:money}, compteur {meter}", {"meter": None}) == "Solde: -, compteur -"
    assert fmt.fill("Rang {}", CONTEXT) == "Rang -"


def test_a_dotted_name_reads_inside_the_context_and_never_an_attribute():
    fmt = TextFormatter("en")
    assert fmt.fill("Account {account.number}", CONTEXT) == "Account 1000001"
    assert fmt.fill("{amount.__class__}", CONTEXT) == "-"


def test_a_context_that_is_not_a_plain_dict_is_filled_alike():
    fmt = TextFormatter("fr")
    assert fmt.fill("{kwh:kwh}, {amount:money}, {gone}", UserDict(CONTEXT)) == "42,5 kWh, 12 500 FCFA, -"


def test_broken_braces_leave_the_text_as_written():
    fmt = TextFormatter("fr")
    assert fmt.fill("Solde {balance:money", CONTEXT) == "Solde {balance:money"
    assert fmt.fill("Tapez 1 }", CONTEXT) == "Tapez 1 }"


def test_a_value_that_does_not_fit_its_format_is_shown_as_it_is():
    fmt = TextFormatter("en")
    assert fmt.fill("{amount:money} on {due:date}", {"amount": "soon", "due": "later"}) == "soon on later"


@pytest.mark.parametrize(("token", "shown"), [
    ("48213907561284730195", "Code: 4821 3907 5612 8473 0195"),        # 20 digits: as typed on the meter
    ("4821-3907-5612-8473-0195", "Code: 4821 3907 5612 8473 0195"),    # the provider's dashes: the same groups
    ("48 2139 0756 1284 7301 95", "Code: 4821 3907 5612 8473 0195"),   # its own spacing: the same groups
    ("123456789012", "Code: 1234 5678 9012"),                          # any length of digits
    ("12345", "Code: 1234 5"),
    ("AB12-CD34", "Code: AB12-CD34"),                                  # not digits: as written
    ("1234/5678", "Code: 1234/5678"),
    ("", "Code: "),
])
def test_a_prepaid_token_reads_in_groups_of_four_as_on_the_meters_keypad(token, shown):
    assert TextFormatter("fr").fill("Code: {token:token}", {"token": token}) == shown
