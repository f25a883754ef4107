"""The demo data tells one story: a whole billing cycle of seeded readings adds up to its bill's kWh,
whatever day the back office was seeded on."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from backoffice.db import make_engine, make_session_factory
from backoffice.metering_api import index_at
from backoffice.models import Base, Bill
from backoffice.seed import cycle_bounds, seed_demo


@pytest.mark.parametrize("seeded_at", [datetime(2026, 11, 26, 12, 0), datetime(2026, 11, 3, 7, 0)])
def test_a_whole_cycle_of_readings_adds_up_to_its_bill(tmp_path, seeded_at):
    engine = make_engine(f"sqlite:///{tmp_path / 'bo.db'}")
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    seed_demo(sessions, now=seeded_at)
    # The last cycle that ended before seeding is entirely inside the 90 days of readings.
    start, end, period = cycle_bounds(cycle_bounds(seeded_at)[0] - timedelta(hours=1))
    with sessions() as session:
        for meter, account in (("MTR-1000001", "1000001"), ("MTR-2000002", "2000002")):
            used = index_at(session, meter, end) - index_at(session, meter, start)  # type: ignore[operator]
            bill = session.scalar(select(Bill).where(Bill.account_number == account, Bill.period == period))
            assert bill is not None
            assert abs(used - bill.kwh) <= Decimal("0.5"), (meter, period, used, bill.kwh)
    engine.dispose()
