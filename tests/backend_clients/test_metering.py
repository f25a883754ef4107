"""MeteringClient against the seeded reference back office."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import pytest

from backend_clients import MeteringClient
from dialogs.backends import Consumption, NotFound, PrepaidCredit, Reading


def test_readings_consumption_and_credit(metering: MeteringClient) -> None:
    reading = metering.last_reading("MTR-1000001")
    assert isinstance(reading, Reading) and reading.meter_id == "MTR-1000001"
    assert reading.at.tzinfo == UTC and isinstance(reading.index_kwh, Decimal)

    consumption = metering.consumption("MTR-1000001", 7)
    assert isinstance(consumption, Consumption)
    assert (consumption.meter_id, consumption.days) == ("MTR-1000001", 7)
    assert consumption.kwh > 0 and consumption.previous_kwh > 0
    assert consumption.last_reading == reading

    credit = metering.prepaid_credit("MTR-3000001")
    assert isinstance(credit, PrepaidCredit)
    assert credit.credit_kwh == Decimal("42.5") and credit.updated_at.tzinfo == UTC


def test_unknown_or_postpaid_meter_is_not_found(metering: MeteringClient) -> None:
    with pytest.raises(NotFound):
        metering.last_reading("MTR-0000000")
    with pytest.raises(NotFound):
        metering.consumption("MTR-0000000", 7)
    with pytest.raises(NotFound):
        metering.prepaid_credit("MTR-1000001")   # postpaid meter: no credit
