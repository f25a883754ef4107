"""Wire formats: reading JSON request bodies and fields, writing decimals and UTC datetimes.

Field readers raise ``Invalid`` (422) naming the field; a body that is not JSON, or not an
object, is a ``BadRequest`` (400).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request

from .errors import BadRequest, Invalid

__all__ = [
    "body_hash",
    "datetime_field",
    "decimal_field",
    "fmt_date",
    "fmt_datetime",
    "fmt_decimal",
    "has_places",
    "idempotency_key",
    "int_field",
    "json_body",
    "normalise_msisdn",
    "parse_datetime",
    "parse_decimal",
    "query_int",
    "text_field",
    "utcnow",
]

MSISDN = re.compile(r"^\+[1-9]\d{7,14}$")


def utcnow() -> datetime:
    """Now in UTC, naive, to the microsecond (how the database stores datetimes)."""
    return datetime.now(UTC).replace(tzinfo=None)


def json_body() -> dict[str, Any]:
    """The request body as a JSON object (400 when it is not)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("a JSON object body is required", code="bad_json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="bad_json") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="bad_json")
    return body


def idempotency_key() -> str:
    """The request's ``Idempotency-Key`` header: required (400 without it), at most 200 characters."""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if not key:
        raise BadRequest("the Idempotency-Key header is required", code="idempotency_key_required")
    if len(key) > 200:
        raise BadRequest("Idempotency-Key is longer than 200 characters", code="bad_idempotency_key")
    return key


def body_hash(body: dict[str, Any]) -> str:
    """Hash of the canonical JSON of a body, for idempotency-key comparison."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def text_field(body: dict[str, Any], name: str, *, required: bool = True, max_len: int = 200,
               choices: tuple[str, ...] | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise Invalid(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise Invalid(f"'{name}' must be a string")
    value = value.strip()
    if required and not value:
        raise Invalid(f"'{name}' must not be empty")
    if len(value) > max_len:
        raise Invalid(f"'{name}' is longer than {max_len} characters")
    if choices is not None and value not in choices:
        raise Invalid(f"'{name}' must be one of {', '.join(choices)}")
    return value


def parse_decimal(value: Any, allow_float: bool = True) -> Decimal:
    """A decimal from a JSON string or number (never a bool); ``TypeError``/``ValueError`` otherwise.

    Money is read with ``allow_float=False``: a decimal string or a JSON integer only.
    """
    accepted = (str, int, float) if allow_float else (str, int)
    if isinstance(value, bool) or not isinstance(value, accepted):
        raise TypeError("must be a decimal string")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("must be a decimal string") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def decimal_field(body: dict[str, Any], name: str, *, minimum: Decimal | None = None,
                  maximum: Decimal | None = None, places: int = 2) -> Decimal:
    if body.get(name) is None:
        raise Invalid(f"'{name}' is required")
    try:
        number = parse_decimal(body[name], allow_float=False)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"'{name}' {exc}") from None
    if minimum is not None and number < minimum:
        raise Invalid(f"'{name}' must be at least {fmt_decimal(minimum)}")
    if maximum is not None and number > maximum:
        raise Invalid(f"'{name}' must be at most {fmt_decimal(maximum)}")
    if not has_places(number, places):
        raise Invalid(f"'{name}' has more than {places} decimal places")
    return number


def has_places(number: Decimal, places: int) -> bool:
    """Whether ``number`` is exact with at most ``places`` decimal places."""
    try:
        return number == number.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:
        return False


def int_field(body: dict[str, Any], name: str, *, minimum: int, maximum: int) -> int:
    value = body.get(name)
    if value is None:
        raise Invalid(f"'{name}' is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"'{name}' must be an integer")
    if not minimum <= value <= maximum:
        raise Invalid(f"'{name}' must be between {minimum} and {maximum}")
    return value


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 datetime string to naive UTC; a string without offset is taken as UTC."""
    if not isinstance(value, str):
        raise TypeError("must be an ISO 8601 datetime string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO 8601 datetime string") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def datetime_field(body: dict[str, Any], name: str, *, required: bool = True) -> datetime | None:
    value = body.get(name)
    if value is None:
        if required:
            raise Invalid(f"'{name}' is required")
        return None
    try:
        return parse_datetime(value)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"'{name}' {exc}") from None


def query_int(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"query parameter '{name}' must be an integer") from None
    if not minimum <= value <= maximum:
        raise Invalid(f"query parameter '{name}' must be between {minimum} and {maximum}")
    return value


def normalise_msisdn(value: str) -> str | None:
    """``+221770000001`` from common spellings (spaces, ``00`` prefix, no ``+``); None if not E.164."""
    text = re.sub(r"[\s\-().]", "", value)
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        text = "+" + text
    return text if MSISDN.match(text) else None


def fmt_decimal(value: Decimal | None) -> str | None:
    """``Decimal('12500.00')`` -> ``"12500"``, ``Decimal('42.500')`` -> ``"42.5"``."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def fmt_datetime(value: datetime | None) -> str | None:
    """Naive UTC -> ``2026-10-31T08:00:00Z`` (fraction of second only when there is one)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def fmt_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
