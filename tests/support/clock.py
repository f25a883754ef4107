"""The clock of date-dependent tests: fixed instants, never the wall clock.

``clock`` is parametrised over the instants where date arithmetic goes wrong (just before
midnight at a year's end, midnight on the first day after February): a test that takes it runs
once per instant, and passes the same on any day the suite runs::

    def test_purge(clock):
        purge(sessions, now=clock)

``product_clock`` is the one clock of the whole product in a test: the engine app's (``Settings.clock``:
the ``now`` of every dialog step) and the reference back office's (``create_app(config, clock=...)``:
arrangements' dates, consumption windows). It is ``None`` (the wall clock) unless a test sets it,
one test by indirect parametrisation, a whole module by overriding the fixture; tests then move it
across midnight or a month's end::

    @pytest.mark.parametrize("product_clock", [datetime(2027, 1, 31, 23, 59, 30, tzinfo=UTC)], indirect=True)
    def test_due_dates(phone, product_clock):
        ...
        product_clock.advance(minutes=1)      # 1 February
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

__all__ = ["INSTANTS", "SettableClock"]

INSTANTS = {
    "year-end-23:59:30": datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC),
    "march-1st-midnight": datetime(2027, 3, 1, 0, 0, 0, tzinfo=UTC),
}


@pytest.fixture(params=list(INSTANTS.values()), ids=list(INSTANTS))
def clock(request: pytest.FixtureRequest) -> datetime:
    """Now, for the code under test (aware, UTC)."""
    instant: datetime = request.param
    return instant


@pytest.fixture
def product_clock(request: pytest.FixtureRequest) -> SettableClock | None:
    """The clock shared by the engine app and the back office of a test; ``None``: the wall clock.

    One test sets it with ``@pytest.mark.parametrize("product_clock", [start], indirect=True)``, ``start``
    an aware ``datetime``, or a ``timedelta``: that long after the back office's demo data was seeded
    (``backoffice_seeded_at``), for figures read from its meter readings."""
    start: datetime | timedelta | None = getattr(request, "param", None)
    if isinstance(start, timedelta):
        seeded: datetime = request.getfixturevalue("backoffice_seeded_at")
        return SettableClock(seeded + start)
    return None if start is None else SettableClock(start)


@dataclass
class SettableClock:
    """A clock the test sets and moves forward, for code that takes ``clock: Callable[[], datetime]``."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)
