"""Pure pieces: masking, the breaker's state machine (with a fake clock), config checks, parsing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from backend_clients import CircuitBreaker, CircuitOpen, ClientConfig, mask
from backend_clients.masking import MaskNumbersFilter, mask_numbers
from backend_clients.parsing import MalformedResponse, decimal, moment


@pytest.mark.parametrize(("value", "masked"), [
    ("+221770000001", "+2217*****001"), ("1000001", "1***001"), ("12", "**"), ("", "-"), (None, "-"),
])
def test_mask_keeps_the_last_three_characters(value: str | None, masked: str) -> None:
    assert mask(value) == masked


def test_mask_numbers_in_free_text_and_log_records() -> None:
    assert mask_numbers("GET /by-phone/+221770000001 and /accounts/1000001?limit=12") == \
        "GET /by-phone/+2217*****001 and /accounts/1***001?limit=12"
    record = logging.LogRecord("urllib3.connectionpool", logging.WARNING, __file__, 1,
                               "Retrying after %r: %s", ("boom", "/api/v1/accounts/1000001/balance"), None)
    assert MaskNumbersFilter().filter(record)
    assert record.getMessage() == "Retrying after 'boom': /api/v1/accounts/1***001/balance"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_states() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=2, reset_seconds=30, clock=clock)
    assert breaker.before_call() is False
    breaker.record(ok=False)
    breaker.record(ok=True)                 # a success resets the count: failures must be consecutive
    for _ in range(2):
        breaker.before_call()
        breaker.record(ok=False)
    assert str(breaker.state) == "open"
    with pytest.raises(CircuitOpen):
        breaker.before_call()

    clock.now += 30
    assert breaker.before_call() is True    # the one trial
    with pytest.raises(CircuitOpen):        # others wait for its outcome
        breaker.before_call()
    breaker.record(ok=False, trial=True)
    assert str(breaker.state) == "open"
    with pytest.raises(CircuitOpen):
        breaker.before_call()

    clock.now += 30
    assert breaker.before_call() is True
    breaker.record(ok=False)                # late news from an old call does not decide
    assert str(breaker.state) == "half-open"
    breaker.record(ok=True, trial=True)
    assert str(breaker.state) == "closed" and breaker.consecutive_failures == 0


@pytest.mark.parametrize("bad", [{"base_url": "127.0.0.1:80"}, {"base_url": "http://x", "read_timeout": 0},
                                 {"base_url": "http://x", "retries": -1}, {"base_url": "http://x", "breaker_failures": 0}])
def test_config_is_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClientConfig(**bad)  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    config = ClientConfig("http://127.0.0.1:8080")
    assert (config.connect_timeout, config.read_timeout, config.retries) == (2.0, 5.0, 2)
    assert (config.breaker_failures, config.breaker_reset_seconds, config.api_key) == (5, 30, None)
    with pytest.raises(AttributeError):
        config.retries = 3  # type: ignore[misc]


def test_parsing_decimals_and_datetimes() -> None:
    assert decimal({"a": "12500"}, "a") == Decimal(12500)
    assert decimal({"a": 0.1}, "a") == Decimal("0.1")
    for bad in (True, "x", "NaN", None):
        with pytest.raises(MalformedResponse):
            decimal({"a": bad}, "a")
    assert moment({"t": "2026-10-31T08:00:00Z"}, "t") == datetime(2026, 10, 31, 8, tzinfo=UTC)
    assert moment({"t": "2026-10-31T08:00:00"}, "t").tzinfo == UTC
    assert moment({"t": "2026-10-31T09:00:00+01:00"}, "t") == datetime(2026, 10, 31, 8, tzinfo=UTC)
    assert moment({"t": "2026-10-31T09:00:00+01:00"}, "t").tzinfo == UTC
    assert timezone(timedelta(0)) == UTC
