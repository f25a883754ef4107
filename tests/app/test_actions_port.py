"""``RASA_ACTIONS_PORT=off`` leaves the chatbot's action server out, as the README says: ``make run`` starts
without it (its settings read), and ``python -m app actions`` refuses to start, saying why."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.settings import Settings


@pytest.mark.parametrize("raw, port", [("off", None), ("OFF", None), ("5056", 5056), ("", 5055)])
def test_the_action_servers_port_or_off(monkeypatch: pytest.MonkeyPatch, raw: str, port: int | None) -> None:
    monkeypatch.setenv("RASA_ACTIONS_PORT", raw)
    assert Settings.from_env().rasa_actions_port == port


def test_the_action_server_turned_off_says_so_instead_of_starting() -> None:
    done = subprocess.run([sys.executable, "-m", "app", "actions"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RASA_ACTIONS_PORT": "off"}, check=False)
    assert done.returncode == 2
    assert "RASA_ACTIONS_PORT=off" in done.stderr and "Traceback" not in done.stderr
