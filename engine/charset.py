"""GSM 03.38 (GSM-7) measurement and transliteration for channels that count in GSM-7 septets.

A USSD screen is 182 GSM-7 characters; one character outside the alphabet switches the
whole screen to UCS-2 and roughly halves the room, so French text is transliterated
(ê -> e, ç -> c, « -> ") unless the channel is configured for UCS-2.
"""

from __future__ import annotations

import unicodedata

__all__ = ["GSM7_BASIC", "GSM7_EXTENSION", "gsm7_length", "is_gsm7", "sms_segments", "to_gsm7"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

# Characters whose plain decomposition is wrong or missing.
_SPECIAL = {
    "ç": "c", "œ": "oe", "Œ": "OE", "æ": "ae",
    "’": "'", "‘": "'", "‚": ",", "“": '"', "”": '"', "«": '"', "»": '"',
    "–": "-", "—": "-", "…": "...", "•": "-", "·": ".", "°": "o", "²": "2", "³": "3",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\t": " ",
}


def is_gsm7(text: str) -> bool:
    return _GSM7_ALL.issuperset(text)


def gsm7_length(text: str) -> int:
    """Septets needed: extension characters take two."""
    if GSM7_EXTENSION.isdisjoint(text):
        return len(text)
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


def _one(ch: str) -> str:
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in _SPECIAL:
        return _SPECIAL[ch]
    decomposed = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    if base and all(c in GSM7_BASIC for c in base):
        return base
    return "?"


def to_gsm7(text: str) -> str:
    """Replace every character outside GSM-7 by its closest GSM-7 spelling."""
    if is_gsm7(text):
        return text
    return "".join(_one(ch) for ch in text)


def sms_segments(text: str) -> int:
    """How many SMS parts ``text`` takes: 160 GSM-7 septets (153 a part when concatenated), or 70
    UCS-2 characters (67 a part) as soon as one character is outside GSM-7."""
    if is_gsm7(text):
        single, part, size = 160, 153, gsm7_length(text)
    else:
        single, part, size = 70, 67, len(text.encode("utf-16-le")) // 2
    if size <= single:
        return 1
    return -(-size // part)
