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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["+221770000001", "+221770000002", "+221770000003", "+221770009999"]), st.randoms())
def test_random_walks_never_break_a_screen(app, msisdn, rnd):
    phone = UssdPhone(app.test_client(), msisdn)
    screen = phone.dial()
    for _ in range(14):
        assert phone.last_status == 200, screen
        if screen.startswith("END "):
            break
        keys = OPTION.findall(screen)
        value = rnd.choice(keys) if keys and rnd.random() < 0.8 else rnd.choice(JUNK)
        screen = phone.answer(value)
