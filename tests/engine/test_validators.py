"""What an input or a keyword's argument accepts: an amount as customers write it, with its currency."""

from __future__ import annotations

import pytest

from engine.validators import InvalidInput, validate
from menus.schema import ValidatorSpec

AMOUNT = ValidatorSpec(type="amount", min=100, max=2_000_000)


@pytest.mark.parametrize(("typed", "stored"), [
    ("5000", "5000"), ("5 000", "5000"), ("5000 FCFA", "5000"), ("5 000F", "5000"), ("2000 cfa", "2000"),
    ("5000 F CFA", "5000"), ("5000f.", "5000"), ("5000 XOF", "5000"),
])
def test_an_amount_may_carry_its_currency(typed, stored):
    assert validate(AMOUNT, typed) == stored


@pytest.mark.parametrize("typed", ["FCFA", "5000 EUR", "5.5", "cinq mille", "50 FCFA", "5000 FCFA FCFA"])
def test_anything_else_is_not_an_amount(typed):
    with pytest.raises(InvalidInput):
        validate(AMOUNT, typed)


@pytest.mark.parametrize(("spec", "typed", "stored"), [
    (ValidatorSpec(type="pin"), "١٢٣٤", "1234"),                            # Arabic-Indic digits
    (ValidatorSpec(type="account_number"), "１０００００１", "1000001"),      # full-width digits
    (AMOUNT, "٥٠٠٠", "5000"),
    (AMOUNT, "۵ ۰۰۰ FCFA", "5000"),                                           # Persian digits, a space, the currency
])
def test_another_scripts_digits_are_read_as_the_digits_they_are(spec, typed, stored):
    assert validate(spec, typed) == stored


@pytest.mark.parametrize(("spec", "typed"), [
    (ValidatorSpec(type="digits", min_len=6, max_len=6), "¹²³⁴⁵⁶"),         # superscripts: isdigit() takes them
    (ValidatorSpec(type="regex", pattern="(?i)sms|whatsapp|e-?mail"), "EMAıL"),   # dotless i folds to i
    (ValidatorSpec(type="regex", pattern="(?i)on|off|oui|non"), "OUı"),
])
def test_codes_amounts_and_keyword_words_are_plain_ascii(spec, typed):
    with pytest.raises(InvalidInput):
        validate(spec, typed)
