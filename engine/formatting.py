"""Fills ``{placeholders}`` of menu texts from the session context, with locale formatting.

``{balance:money}`` -> ``12 500 FCFA`` (fr) / ``12,500 FCFA`` (en), ``{due:date}`` ->
``15/11/2026``, ``{period:month}`` -> ``octobre 2026``, ``{kwh:kwh}`` -> ``42,5 kWh``, ``{status:label}`` -> the word for a coded value,
``{token:token}`` -> a prepaid token of digits in groups of four, as typed on the meter's keypad
(``4821 3907 5612 8473 0195``, from ``48213907561284730195`` or ``4821-3907-5612-8473-0195``).
Context values are JSON (amounts as decimal strings, dates as ISO strings); a missing
value renders as ``-`` rather than failing the hop.

A screen is filled on every hop (a page turn of a bills list formats a dozen amounts and dates
again), so a text's placeholders are parsed once (``_compiled``), and each formatter remembers
what it made of a plain value with a spec: babel's number and date formatting is then paid once
per value, not once per hop.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import NumberPattern, parse_pattern

__all__ = ["TextFormatter", "placeholders"]

_LOCALES = {"fr": "fr_SN", "en": "en_GB"}
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


@lru_cache(maxsize=16)
def _locale(language: str) -> Locale:
    return Locale.parse(_LOCALES.get(language, language))


@lru_cache(maxsize=16)
def _number_pattern(pattern: str) -> NumberPattern:
    # babel parses the pattern string on every format_decimal call; a screen formats dozens.
    return parse_pattern(pattern)


def _number(value: Decimal, pattern: str, locale: Locale) -> str:
    return str(_number_pattern(pattern).apply(value, locale))


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    text = str(value).replace("Z", "+00:00")
    return datetime.fromisoformat(text)


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    text = str(value)
    if len(text) == 7:  # "2026-10": a billing period
        text += "-01"
    return date.fromisoformat(text[:10])


def _token_groups(token: str) -> str:
    # The one rule for showing a prepaid token (screens and receipts alike): it is typed on the meter's
    # keypad four digits at a time, whatever grouping the provider wrote it with (spaces, dashes);
    # a token that is not digits (letters, other marks) is shown exactly as written.
    digits = "".join(ch for ch in token if ch not in " -")
    if not (digits.isascii() and digits.isdigit()):
        return token
    return " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))


_Part = tuple[str, str | None, str]
_PLAIN_VALUES: Final = (str, int, float, bool)
_REMEMBERED: Final = 4096   # formatted values kept per formatter (emptied when full)


@lru_cache(maxsize=4096)
def _compiled(text: str) -> tuple[_Part, ...] | None:
    """``(literal, name, spec)`` parts of a text; None when it needs ``str.format``'s general path
    (a conversion such as ``!r``, or a placeholder inside a spec). Raises ValueError on bad braces."""
    parts: list[_Part] = []
    for literal, name, spec, conversion in string.Formatter().parse(text):
        if conversion or (spec and "{" in spec):
            return None
        parts.append((literal, name, spec or ""))
    return tuple(parts)


def placeholders(text: str) -> list[tuple[str, str]]:
    """The ``(name, format spec)`` pairs of a text; raises ValueError on bad braces."""
    return [(name, spec or "") for _, name, spec, _ in string.Formatter().parse(text) if name is not None]


class _Missing:
    def __format__(self, spec: str) -> str:
        return "-"


class TextFormatter(string.Formatter):
    """A ``str.format`` that knows money, dates and kWh in the user's language."""

    def __init__(self, language: str, labels: Mapping[str, Mapping[str, str]] | None = None,
                 currency_label: str = "FCFA", time_zone: str = "Africa/Dakar") -> None:
        super().__init__()
        self.language = language
        self.labels = labels or {}
        self.locale = _locale(language)
        self.currency_label = currency_label
        self.time_zone = time_zone
        self.zone = ZoneInfo(time_zone)
        self._made: dict[tuple[type, Any, str], str] = {}

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, int):
            return _Missing()
        if "." not in key and type(kwargs) is dict:   # the usual case: a plain name in a plain dict
            found = kwargs.get(key)
            return _Missing() if found is None else found
        value: Any = kwargs
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return _Missing() if value is None else value

    def get_field(self, field_name: str, args: Any, kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        # Dotted names are resolved in get_value; never let format strings reach attributes.
        return self.get_value(field_name, args, kwargs), field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, _Missing):
            return "-"
        plain = type(value) in _PLAIN_VALUES
        if plain:
            made = self._made.get((type(value), value, format_spec))
            if made is not None:
                return made
        try:
            made = self._format(value, format_spec).translate(_SPACES)
        except (ValueError, TypeError, InvalidOperation, ArithmeticError):
            made = str(value)
        if plain:
            if len(self._made) >= _REMEMBERED:
                self._made.clear()
            self._made[(type(value), value, format_spec)] = made
        return made

    def _format(self, value: Any, spec: str) -> str:
        if spec == "label":
            words = self.labels.get(str(value), {})
            return words.get(self.language) or next(iter(words.values()), str(value))
        if spec == "money":
            return f"{_number(_decimal(value), '#,##0', self.locale)} {self.currency_label}"
        if spec == "number":
            return _number(_decimal(value), "#,##0.##", self.locale)
        if spec == "token":
            return _token_groups(str(value))
        if spec == "kwh":
            return f"{_number(_decimal(value), '#,##0.#', self.locale)} kWh"
        if spec == "date":
            return str(format_date(_as_date(value), "dd/MM/yyyy", locale=self.locale))
        if spec == "month":
            return str(format_date(_as_date(value), "MMMM yyyy", locale=self.locale))
        if spec == "datetime":
            return str(format_datetime(_as_datetime(value), "dd/MM HH:mm", tzinfo=self.zone,
                                       locale=self.locale))
        if spec == "time":
            return str(format_time(_as_datetime(value), "HH:mm", tzinfo=self.zone, locale=self.locale))
        return format(value, spec) if spec else str(value)

    def fill(self, text: str, context: Mapping[str, Any]) -> str:
        if "{" not in text:  # most labels: nothing to fill, skip the parse
            return text
        try:
            parts = _compiled(text)
            if parts is None:
                return self.vformat(text, (), context)
        except (ValueError, IndexError, KeyError):
            return text
        made, plain_context = self._made, type(context) is dict
        out: list[str] = []
        for literal, name, spec in parts:
            out.append(literal)
            if name is None:
                continue
            key = name or "0"   # "{}" is positional in str.format: nothing to fill it with, like any missing value
            if plain_context and "." not in key:
                # The usual field, inlined (a page turn fills dozens): a plain name, a value made before.
                value = context.get(key)
                if value is None:
                    out.append("-")
                    continue
                if type(value) in _PLAIN_VALUES:
                    done = made.get((type(value), value, spec))
                    if done is not None:
                        out.append(done)
                        continue
            else:
                value = self.get_value(key, (), context)
            out.append(self.format_field(value, spec))
        return "".join(out)
