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


# A number as a person types it in free text, its digits grouped by spaces, dots or dashes ("+221 77 123 45 67"):
# six digits or more, so an amount ("12 500") stays readable.
_TYPED_NUMBER: Final = re.compile(r"\+?\d(?:[ .-]?\d){5,}")
_SEPARATORS: Final = re.compile(r"[ .-]")


def mask_typed_numbers(text: str) -> str:
    """``mask_numbers`` for text a person typed (an agent's reason): a number split by spaces, dots or dashes is
    masked whole, its separators dropped: ``called from +221 77 123 45 67`` -> ``called from +2217*****567``."""
    return _TYPED_NUMBER.sub(lambda match: mask(_SEPARATORS.sub("", match.group())), text)


def mask_numbers(text: str) -> str:
    """Masks every long number in free text: ``/accounts/1000001/bills`` -> ``/accounts/1***001/bills``."""
    return _NUMBER.sub(lambda match: mask(match.group()), text)


class MaskNumbersFilter(logging.Filter):
    """Rewrites a log record's message with ``mask_numbers``: for loggers we do not write ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken record is the logging module's business, not ours
            return True
        record.msg, record.args = mask_numbers(message), None
        return True
