"""Pure rules behind the figures: the billing cycle, a prepaid meter's days of credit, the next
instalment of a plan, arrangement references typed by a customer."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dialogs.arrangements import normalise_reference
from dialogs.backends import Arrangement
from dialogs.billing import days_of_credit, next_instalment
from dialogs.consumption import billing_cycle, cycle_projection, cycle_so_far_days


@pytest.mark.parametrize(("now", "start", "end"), [
    (datetime(2026, 11, 26, 12, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 12, 20, tzinfo=UTC)),
    (datetime(2026, 11, 19, 23, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)),
    (datetime(2026, 11, 20, 0, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 12, 20, tzinfo=UTC)),
    (datetime(2026, 12, 31, 8, tzinfo=UTC), datetime(2026, 12, 20, tzinfo=UTC), datetime(2027, 1, 20, tzinfo=UTC)),
    (datetime(2027, 1, 5, 8, tzinfo=UTC), datetime(2026, 12, 20, tzinfo=UTC), datetime(2027, 1, 20, tzinfo=UTC)),
])
def test_the_billing_cycle_runs_from_the_billing_day_to_the_next(now, start, end):
    assert billing_cycle(now, 20) == (start, end)


def test_the_cycle_estimate_extrapolates_the_days_begun():
    start = datetime(2026, 11, 20, tzinfo=UTC)
    assert cycle_so_far_days(datetime(2026, 11, 26, 12, tzinfo=UTC), start) == 7     # 6.5 days begun: 7
    assert cycle_so_far_days(start, start) == 1
    assert cycle_projection(Decimal(14), 7, 30) == Decimal("60.0")


def test_days_of_credit_are_whole_days_and_none_without_use():
    assert days_of_credit(Decimal("42.5"), Decimal("4.3")) == 9
    assert days_of_credit(Decimal(1), Decimal("4.3")) == 0
    assert days_of_credit(Decimal("42.5"), Decimal(0)) is None


def test_the_next_instalment_is_the_first_not_yet_past():
    plan = Arrangement("ARR-0A1B2C3D4E", "instalments", date(2026, 10, 1), "active", 3,
                       ((date(2026, 11, 1), Decimal(4168)), (date(2026, 12, 1), Decimal(4166)),
                        (date(2027, 1, 1), Decimal(4166))))
    assert next_instalment(plan, date(2026, 11, 26)) == (date(2026, 12, 1), Decimal(4166))
    assert next_instalment(plan, date(2026, 12, 1)) == (date(2026, 12, 1), Decimal(4166))
    assert next_instalment(plan, date(2027, 2, 1)) == (date(2027, 1, 1), Decimal(4166))


@pytest.mark.parametrize(("typed", "expected"), [
    ("ARR-0A1B2C3D4E", "ARR-0A1B2C3D4E"), ("arr 0a1b2c3d4e", "ARR-0A1B2C3D4E"), ("ARR0A1B2C3D4E", "ARR-0A1B2C3D4E"),
    ("REC-7K3Q", None), ("ARR-0A1B", None), ("ARR-0A1B2C3D4EZ", None),
])
def test_arrangement_references_as_a_customer_types_them(typed, expected):
    assert normalise_reference(typed) == expected
