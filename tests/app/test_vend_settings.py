"""The waits of the vend retry are settings: a prepaid purchase settled by hand whose token the vending system
did not give is asked again after ``VEND_FIRST_WAIT_SECONDS``, the waits doubling up to ``VEND_MAX_WAIT_SECONDS``;
a value the product cannot use stops every process at start, saying which and why (exit 3), like the others."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.factory import build_deps
from app.settings import SettingRefused, Settings
from app.storage import make_sessions
from dialogs.vending import vend_wait

ROOT = Path(__file__).resolve().parents[2]


def test_the_waits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEND_FIRST_WAIT_SECONDS", raising=False)
    monkeypatch.delenv("VEND_MAX_WAIT_SECONDS", raising=False)
    assert (Settings.from_env().vend_first_wait_seconds, Settings.from_env().vend_max_wait_seconds) == (30, 3600)
    monkeypatch.setenv("VEND_FIRST_WAIT_SECONDS", "60")
    monkeypatch.setenv("VEND_MAX_WAIT_SECONDS", "60")
    assert (Settings.from_env().vend_first_wait_seconds, Settings.from_env().vend_max_wait_seconds) == (60, 60)
    monkeypatch.setenv("VEND_MAX_WAIT_SECONDS", "86400")
    assert Settings.from_env().vend_max_wait_seconds == 86_400


@pytest.mark.parametrize(("first", "most", "message"), [
    ("abc", "3600", "VEND_FIRST_WAIT_SECONDS: 'abc' is not a whole number of seconds from 1 to 3600"),
    ("0", "3600", "VEND_FIRST_WAIT_SECONDS: '0' is not a whole number of seconds from 1 to 3600"),
    ("3601", "7200", "VEND_FIRST_WAIT_SECONDS: '3601' is not a whole number of seconds from 1 to 3600"),
    ("-5", "3600", "VEND_FIRST_WAIT_SECONDS: '-5' is not a whole number of seconds from 1 to 3600"),
    ("120", "60", "VEND_MAX_WAIT_SECONDS: '60' is not a whole number of seconds from 120 to 86400"),
    ("30", "86401", "VEND_MAX_WAIT_SECONDS: '86401' is not a whole number of seconds from 30 to 86400"),
    ("30", "1h", "VEND_MAX_WAIT_SECONDS: '1h' is not a whole number of seconds from 30 to 86400"),
])
def test_a_wait_the_product_cannot_use_is_refused(monkeypatch: pytest.MonkeyPatch, first: str, most: str,
                                                  message: str) -> None:
    monkeypatch.setenv("VEND_FIRST_WAIT_SECONDS", first)
    monkeypatch.setenv("VEND_MAX_WAIT_SECONDS", most)
    with pytest.raises(SettingRefused) as refused:
        Settings.from_env()
    assert str(refused.value) == message


def test_the_worker_asks_again_after_the_configured_waits(engine_db: str) -> None:
    settings = Settings(database_url=engine_db, vend_first_wait_seconds=5, vend_max_wait_seconds=12)
    deps = build_deps(settings, make_sessions(engine_db))
    assert [vend_wait(deps.settings, tries).total_seconds() for tries in (1, 2, 3, 4)] == [5, 10, 12, 12]


def test_a_wrong_wait_stops_the_worker_at_start_saying_why(tmp_path: Path) -> None:
    env = {**os.environ, "VEND_FIRST_WAIT_SECONDS": "soon", "SECRET_KEY": "test-key",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'product.db'}"}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "app", "worker", "--once"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 3
    assert ("VEND_FIRST_WAIT_SECONDS: 'soon' is not a whole number of seconds from 1 to 3600. Not started"
            in done.stderr)
    assert "Traceback" not in done.stderr
