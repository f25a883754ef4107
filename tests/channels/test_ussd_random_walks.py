"""Random walks through every journey over the USSD callback: whatever a customer presses, each
answer is a CON/END screen of at most 182 characters with status 200, and a session always ends
politely (never a trace, never a 500)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..support.engine import UssdPhone

OPTION = re.compile(r"^(\d{1,2})\. ", re.MULTILINE)
JUNK = ["", "0", "00", "98", "99", "*", "abc", "9" * 20, "1234", "5500", "1000001", "100", "-1"]


# The presses are drawn up front, a fixed number of them, whatever the screens say: the app keeps state
# across examples (PIN locks, reports already filed), so draws that depended on the screens would give
# hypothesis a different data shape for the same example (FlakyStrategyDefinition).
PRESSES = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 10_000)), min_size=14, max_size=14)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["+221770000001", "+221770000002", "+221770000003", "+221770009999"]), PRESSES)
def test_random_walks_never_break_a_screen(app, msisdn, presses):
    phone = UssdPhone(app.test_client(), msisdn)
    screen = phone.dial()
    for use_option, pick in presses:
        assert phone.last_status == 200, screen
        if screen.startswith("END "):
            break
        keys = OPTION.findall(screen)
        value = keys[pick % len(keys)] if keys and use_option < 0.8 else JUNK[pick % len(JUNK)]
        screen = phone.answer(value)
