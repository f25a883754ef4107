"""Reading the back ends' JSON into typed values: decimal strings, ISO dates, UTC datetimes.

Every reader raises ``MalformedResponse`` naming the field (never its value, which may be
personal data); ``HttpBackend`` turns that into ``BackendUnavailable``: a back end that
answers nonsense is as useless to a caller as one that does not answer.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "MalformedResponse",
    "as_object",
    "choice",
    "day",
    "decimal",
    "integer",
    "moment",
    "objects",
    "opt_day",
    "opt_moment",
    "opt_text",
    "text",
]


class MalformedResponse(ValueError):
    """The JSON does not have the shape the API contract promises."""


def as_object(data: Any, what: str = "response") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedResponse(f"{what} is not a JSON object")
    return data


def _field(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise MalformedResponse(f"field '{key}' is missing")
    return data[key]


def text(data: dict[str, Any], key: str) -> str:
    value = _field(data, key)
    if not isinstance(value, str):
        raise MalformedResponse(f"field '{key}' is not a string")
    return value


def opt_text(data: dict[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else text(data, key)


def decimal(data: dict[str, Any], key: str) -> Decimal:
    """Amounts travel as decimal strings (``"12500"``); a JSON number is accepted too, a bool is not."""
    value = _field(data, key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedResponse(f"field '{key}' is not a decimal")
    try:
        # str() first: Decimal(0.1) would carry the float's binary noise into the amount.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise MalformedResponse(f"field '{key}' is not a decimal") from None
    if not number.is_finite():
        raise MalformedResponse(f"field '{key}' is not a finite decimal")
    return number


def integer(data: dict[str, Any], key: str) -> int:
    value = _field(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResponse(f"field '{key}' is not an integer")
    return value


def day(data: dict[str, Any], key: str) -> date:
    value = _field(data, key)
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise MalformedResponse(f"field '{key}' is not an ISO date") from None


def opt_day(data: dict[str, Any], key: str) -> date | None:
    return None if data.get(key) is None else day(data, key)


def moment(data: dict[str, Any], key: str) -> datetime:
    """ISO 8601 with ``Z`` or an offset -> an aware UTC datetime; no offset is taken as UTC (API.md)."""
    value = _field(data, key)
    try:
        parsed = datetime.fromisoformat(value)  # Python >= 3.11 reads the trailing "Z"
    except (TypeError, ValueError):
        raise MalformedResponse(f"field '{key}' is not an ISO datetime") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def opt_moment(data: dict[str, Any], key: str) -> datetime | None:
    return None if data.get(key) is None else moment(data, key)


def choice(data: dict[str, Any], key: str, allowed: Collection[str]) -> Any:
    """A string that must be one of ``allowed`` (the ``Literal`` of the dataclass field)."""
    value = text(data, key)
    if value not in allowed:
        raise MalformedResponse(f"field '{key}' has an unknown value")
    return value


def objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A list of JSON objects under ``key``."""
    value = _field(data, key)
    if not isinstance(value, list):
        raise MalformedResponse(f"field '{key}' is not a list")
    return [as_object(item, f"an item of '{key}'") for item in value]
