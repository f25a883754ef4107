"""Security events are kept in SQL under a pseudonym an agent can recompute, never the number itself.

The pseudonym is computed here from the documented formula (hex HMAC-SHA256 of the number under
``SECRET_KEY``), not with the product's helper, so a change of formula fails a test.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from app.__main__ import _secret_key_file
from app.factory import create_app
from app.settings import Settings
from app.storage import SqlSecurityAudit, make_sessions
from engine import SecurityEvent

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-secret-key-4c1f"
NUMBER = "+221770000001"


def _by_hand(key: str, number: str) -> str:
    return hmac.new(key.encode(), number.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return replace(settings, secret_key=KEY)


def _dump(database_url: str) -> str:
    with make_sessions(database_url)() as db:
        return repr(db.execute(text("SELECT * FROM security_events")).all())


def test_the_app_keeps_security_events_under_a_pseudonym(keyed: Settings) -> None:
    app = create_app(keyed)
    engine_audit = app.extensions["engine"].security
    assert engine_audit is app.extensions["parts"]["deps"].security   # one sink for the engine and the dialogs
    engine_audit.record(SecurityEvent("pin_failed", "ussd", NUMBER, "2000001", "wrong PIN"))
    engine_audit.record(SecurityEvent("account_linked", "ussd", "+221770000002", "2000001", "",
                                      {"source": "last_bill"}))
    engine_audit.record(SecurityEvent("gateway_refused", "ussd", None, None, "no token"))

    audit = SqlSecurityAudit(make_sessions(keyed.database_url), KEY)
    on_account = audit.for_account("2000001")
    assert [(e.kind, e.subject_id) for e in on_account] == [
        ("account_linked", _by_hand(KEY, "+221770000002")), ("pin_failed", _by_hand(KEY, NUMBER))]
    assert on_account[0].extra == {"source": "last_bill"} and on_account[1].detail == "wrong PIN"
    assert on_account[0].occurred_at >= on_account[1].occurred_at
    assert [e.kind for e in audit.for_subject(NUMBER)] == ["pin_failed"]
    assert [e.kind for e in audit.for_subject("+221 77 000 00 01")] == ["pin_failed"]   # spaces do not matter
    # Another key names no one: the same number is a stranger to it.
    assert SqlSecurityAudit(make_sessions(keyed.database_url), "another-key").for_subject(NUMBER) == []
    stored = _dump(keyed.database_url)
    assert "770000001" not in stored and "770000002" not in stored and "gateway_refused" in stored


def test_a_broken_audit_store_never_breaks_the_hop(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    unmigrated = make_sessions(f"sqlite:///{tmp_path / 'empty.db'}")   # no security_events table
    with caplog.at_level(logging.WARNING, logger="security"):
        SqlSecurityAudit(unmigrated, KEY).record(SecurityEvent("pin_locked", "ussd", NUMBER, "2000001"))
    assert "could not store security event pin_locked" in caplog.text
    assert NUMBER not in caplog.text   # the log line masks the number


def test_audit_command_answers_who_accessed_an_account(keyed: Settings, tmp_path: Path) -> None:
    audit = SqlSecurityAudit(make_sessions(keyed.database_url), KEY)
    audit.record(SecurityEvent("pin_changed", "ussd", NUMBER, "1000001"))
    audit.record(SecurityEvent("link_refused", "ussd", "+221770000009", "1000001", "throttled"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
           "DATABASE_URL": keyed.database_url, "SECRET_KEY": KEY}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app", "audit", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    account = run("--account", "1000001")
    assert account.returncode == 0, account.stderr
    lines = account.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["link_refused", "pin_changed"]
    assert f"subject={_by_hand(KEY, NUMBER)[:16]}" in lines[1] and "throttled" in lines[0]
    assert "770000001" not in account.stdout and "770000009" not in account.stdout
    number = run("--number", NUMBER)
    assert [line.split()[1] for line in number.stdout.splitlines()] == ["pin_changed"]
    assert run("--account", "9999999").stdout.strip() == "no security events"
    assert run().returncode == 2


def test_settings_never_print_secrets() -> None:
    settings = Settings(secret_key="sk-8a2f", payment_callback_secret="cb-77e1", backoffice_api_key="ak-31d0")
    shown = repr(settings) + str(settings)
    assert "sk-8a2f" not in shown and "cb-77e1" not in shown and "ak-31d0" not in shown
    assert "database_url" in shown


def test_make_run_keeps_one_secret_key_in_var(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    first = _secret_key_file(str(path))
    assert len(first) == 64 and int(first, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _secret_key_file(str(path)) == first   # the same key next run: pseudonyms stay comparable
