"""Phone numbers as every adapter receives them, normalised to E.164 with ``phonenumbers``."""

from __future__ import annotations

import phonenumbers

__all__ = ["in_region", "to_e164"]


def to_e164(raw: str, default_region: str = "SN") -> str | None:
    """``+221 77 000 00 01``, ``00221770000001`` or ``770000001`` -> ``+221770000001``; None if not a number."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def in_region(e164: str, region: str) -> bool:
    """Whether an E.164 number belongs to ``region`` (``SN``): its country, as the numbering plan says."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) == region
    except phonenumbers.NumberParseException:
        return False
