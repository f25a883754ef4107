"""Masking of personal data (phone numbers, account numbers) before it reaches a log line.

The one implementation for the product: the engine, the adapters, the dialogs and the
back-end clients all mask with it, so their log lines correlate.
"""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["MaskNumbersFilter", "mask", "mask_numbers", "mask_typed_numbers"]

# Phone numbers, account numbers, meter ids' digits: any run of 5+ digits, with an optional "+";
# not after ":" (a port number, not personal).
_NUMBER: Final = re.compile(r"(?<![:\d])\+?\d{5,}")


def mask(value: str | None, keep: int = 3) -> str:
    """``+221770000001`` -> ``+2217*****001``, ``1000001`` -> ``1***001``: enough to correlate, not to identify."""
    if not value:
        return "-"
    text = str(value)
    if len(text) <= keep + 2:
        return "*" * len(text)
    # Keep "+" and the country code of an E.164 number: it tells the operator, not the person.
    head = 5 if text.startswith("+") and len(text) > keep + 8 else 1
    return text[:head] + "*" * (len(text) - head - keep) + text[-keep:]


# A currency beside a number makes it an amount, readable: ``15000 FCFA``, ``15 000 F CFA``, ``15000F``, ``XOF 2500``,
# ``€40``. A word's end must follow the sign (``770000001 From`` is no amount).
_CURRENCY: Final = r"(?:F\s?CFA|CFA|XOF|francs?|F|EUR|USD|€|\$)"
_CURRENCY_AFTER: Final = re.compile(rf"\s?{_CURRENCY}(?![A-Za-z])", re.IGNORECASE)
_CURRENCY_BEFORE: Final = re.compile(rf"(?<![A-Za-z]){_CURRENCY}\s?$", re.IGNORECASE)


def _an_amount(text: str, start: int, end: int, digits: str, international: bool) -> bool:
    """Whether the number ``text[start:end]`` is money: a currency right before or after it, and nothing that
    only a phone number is (``+``/``00``, a Senegalese number's nine digits from 3 or 7, its twelve from 221)."""
    if international or (len(digits) == 9 and digits[0] in "37") or (len(digits) == 12 and digits[:3] == "221"):
        return False
    return bool(_CURRENCY_AFTER.match(text, end) or _CURRENCY_BEFORE.search(text[max(0, start - 8):start]))


# A number as a person types it in free text, its digits grouped by spaces, dots or dashes (``+221 77 123 45 67``).
_TYPED_NUMBER: Final = re.compile(r"(?<![\w+])\+?\d(?:[ .-]?\d)*")
_SEPARATORS: Final = re.compile(r"[ .-]")
# What identifies a person: the back office's account number (seven digits, ``engine/validators.py``), a phone
# number in its local form (nine digits, ``77 123 45 67``) or with its country code (``221...``, ``+221...``,
# ``00221...``), a meter id or a token (longer still). Anything shorter (a ticket, a count, an amount) is not.
_PERSONAL_DIGITS: Final = 7
# A date an agent writes (``2026-11-28``, ``28.11.2026``, ``28-11-2026``) is eight digits, and no one's number.
_DATE: Final = re.compile(r"\d{4}-\d\d-\d\d|\d\d[.-]\d\d[.-]\d{4}")


def mask_typed_numbers(text: str) -> str:
    """Masks the phone and account numbers in text a person typed (an agent's reason) and keeps the rest readable.

    A number of seven digits or more, or written international (``+``, ``00``), is masked whole, its separators
    dropped (``00`` read as ``+``): ``called from +221 77 123 45 67`` -> ``called from +2217*****567``, ``account
    1000001`` -> ``account 1***001``. An amount with its currency (``refund 150 000 FCFA``), a date (``2026-11-28``)
    and a shorter number (``ticket 4411``, ``15000``) stay as typed."""
    def masked(match: re.Match[str]) -> str:
        typed = match.group()
        digits = _SEPARATORS.sub("", typed).lstrip("+")
        international = typed.startswith("+") or digits.startswith("00")
        if (len(digits) < _PERSONAL_DIGITS or _DATE.fullmatch(typed)
                or _an_amount(text, match.start(), match.end(), digits, international)):
            return typed
        return mask("+" + digits.removeprefix("00") if international else digits)

    return _TYPED_NUMBER.sub(masked, text)


def mask_numbers(text: str) -> str:
    """Masks every long number in text a program wrote (a log line, an error): ``/accounts/1000001/bills`` ->
    ``/accounts/1***001/bills``. Stricter than ``mask_typed_numbers``: five digits are enough (a one-time code has
    six, a log line must not carry one either); only an amount of six digits at most with its currency (``15000
    FCFA``) is left."""
    def masked(match: re.Match[str]) -> str:
        number = match.group()
        digits = number.lstrip("+")
        # An amount of seven digits or more is masked all the same: in a log line, a number that long may be an
        # account, a meter or a token that happens to stand beside a currency's letters.
        if len(digits) < _PERSONAL_DIGITS and _an_amount(text, match.start(), match.end(), digits,
                                                         number.startswith("+") or digits.startswith("00")):
            return number
        return mask(number)

    return _NUMBER.sub(masked, text)


class MaskNumbersFilter(logging.Filter):
    """Rewrites a log record's message with ``mask_numbers``: for loggers we do not write ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken record is the logging module's business, not ours
            return True
        record.msg, record.args = mask_numbers(message), None
        return True
