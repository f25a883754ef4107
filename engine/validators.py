"""Checks of what a user typed at an ``input`` node, by the validator type named in YAML.

Each check returns the normalised value to store, or raises ``InvalidInput``.

Digits, codes, references and a keyword's words are plain ASCII: patterns match with ``re.ASCII``, so ``\\d`` is
0-9 and a case-blind letter is a Latin one. Without it ``(?i)e-?mail`` took ``EMAıL`` (a dotless i folds to ``i``),
which no step knows as a channel, and ``\\d`` took any script's digits (``١٢٣٤`` as a PIN). Another script's
decimal digits are read as the digits they are first (a phone set to Arabic writes ``٥٠٠٠`` for 5000, a full-width
keyboard ``１０００００１``): the value stored is ASCII.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from menus.schema import ValidatorSpec

__all__ = ["InvalidInput", "accepts", "validate"]


TEXT_MAX_LEN = 160     # one SMS segment: what a ``text`` input keeps at most


class InvalidInput(ValueError):
    pass


def _digits(spec: ValidatorSpec, text: str) -> str:
    if not (text.isascii() and text.isdigit()):     # not "²" nor "٣", which isdigit() takes
        raise InvalidInput("digits")
    if spec.min_len is not None and len(text) < spec.min_len:
        raise InvalidInput("too short")
    if spec.max_len is not None and len(text) > spec.max_len:
        raise InvalidInput("too long")
    return text


# An amount written with its currency, as customers write it in a message: "5000 FCFA", "5 000F", "2000 cfa".
_CURRENCY = re.compile(r"(?i)\s*(f\s*cfa|cfa|xof|f)\.?$")


def _number(spec: ValidatorSpec, text: str, *, whole: bool) -> str:
    if whole:
        text = _CURRENCY.sub("", text)
    cleaned = text.replace(" ", "").replace(",", ".")
    if not re.fullmatch(r"\d{1,12}" if whole else r"\d{1,12}(\.\d{1,3})?", cleaned, re.ASCII):
        raise InvalidInput("not a number")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInput("not a number") from None
    if spec.min is not None and value < Decimal(str(spec.min)):
        raise InvalidInput("too small")
    if spec.max is not None and value > Decimal(str(spec.max)):
        raise InvalidInput("too large")
    return str(value)


def _pattern(spec: ValidatorSpec, text: str, default: str) -> str:
    if not re.fullmatch(spec.pattern or default, text, re.ASCII):
        raise InvalidInput("pattern")
    return text


def _date(spec: ValidatorSpec, text: str) -> str:
    for fmt in ("%d%m%Y", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    raise InvalidInput("date")


def _text(spec: ValidatorSpec, text: str) -> str:
    # Free text: any printable characters, whitespace runs folded to one space.
    folded = " ".join(text.split())
    if len(folded) > (spec.max_len or TEXT_MAX_LEN) or not folded.isprintable():
        raise InvalidInput("text")
    return folded
_CONFIRM_PIN = re.compile(r"(?i)(?:oui|yes|o|y)[\s,:.-]+(\d{4})")


def _confirm_pin(text: str) -> str:
    """``OUI 1234``: a yes and the PIN in one chat message; the value is the PIN."""
    found = _CONFIRM_PIN.fullmatch(text)
    if found is None:
        raise InvalidInput("confirmation")
    return found.group(1)


_CHECKS: dict[str, Callable[[ValidatorSpec, str], Any]] = {
    "digits": _digits,
    "amount": lambda s, t: _number(s, t, whole=True),
    "number": lambda s, t: _number(s, t, whole=False),
    "account_number": lambda s, t: _pattern(s, t, r"\d{7}"),
    "regex": lambda s, t: _pattern(s, t, r".*"),
    "date": _date,
    "pin": lambda s, t: _pattern(s, t, r"\d{4}"),
    "text": _text,
    "confirm_pin": lambda s, t: _confirm_pin(t),
}


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit of another script as its ASCII digit (``٥٠٠٠`` -> ``5000``); superscripts
    and other characters are kept as they are."""
    if text.isascii():
        return text
    return "".join(str(value) if (value := unicodedata.decimal(char, None)) is not None else char for char in text)


def validate(spec: ValidatorSpec, text: str) -> Any:
    """The normalised value of ``text`` under ``spec``; ``InvalidInput`` when it does not pass."""
    text = text.strip() if spec.type == "text" else _ascii_digits(text.strip())
    # Only free text may be longer than a code or an amount could ever be.
    if not text or (len(text) > 64 and spec.type != "text"):
        raise InvalidInput("empty or too long")
    return _CHECKS[spec.type](spec, text)


def accepts(spec: ValidatorSpec, text: str) -> bool:
    """Whether ``text`` passes ``spec`` (an input screen's choice must have a key its field never takes)."""
    try:
        validate(spec, text)
    except InvalidInput:
        return False
    return True
