"""The worker's loop and the ``python -m app`` commands, run as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.settings import Settings
from app.storage import SqlPendingTickets, make_sessions, migrate
from app.storage.models import OutboxEventRow
from app.worker import run_forever
from dialogs.stores import PendingTicket

from ..support.polling import until

ROOT = Path(__file__).resolve().parents[2]


def _until(condition: Callable[[], object], seconds: float = 15.0) -> bool:
    return bool(until(condition, seconds))


def _old_sent_message(settings: Settings) -> None:
    with make_sessions(settings.database_url)() as db, db.begin():
        db.add(OutboxEventRow(dedupe_key="old", kind="payment_receipt", msisdn="+221770000001", payload="{}",
                              status="sent", created_at=datetime.now(UTC) - timedelta(days=120)))


def test_the_loop_forwards_kept_tickets_at_every_pass_purges_and_stops_when_asked(settings: Settings) -> None:
    pending = SqlPendingTickets(make_sessions(settings.database_url))
    pending.add(PendingTicket("ussd:l1:complaint", "+221770000001", "1000001", "complaint", "billing",
                              "Billing dispute", "pending"))
    _old_sent_message(settings)
    stop = threading.Event()
    loop = threading.Thread(target=run_forever, args=(settings, 0.05, stop), daemon=True)
    loop.start()
    try:
        assert _until(lambda: pending.for_user("+221770000001")[0].status == "sent")
        with make_sessions(settings.database_url)() as db:
            assert _until(lambda: db.scalars(select(OutboxEventRow)).all() == [])   # the purge ran
        # A ticket kept later is taken by a later pass: the loop goes on.
        pending.add(PendingTicket("ussd:l2:complaint", "+221770000002", "2000001", "complaint", "meter",
                                  "Meter dispute", "pending"))
        assert _until(lambda: pending.for_user("+221770000002")[0].status == "sent")
    finally:
        stop.set()
        loop.join(timeout=10)
    assert not loop.is_alive()


def test_a_failing_pass_does_not_end_the_loop(settings: Settings, tmp_path: Path) -> None:
    broken = replace(settings, database_url=f"sqlite:///{tmp_path / 'not-migrated.db'}")
    stop = threading.Event()
    loop = threading.Thread(target=run_forever, args=(broken, 0.05, stop), daemon=True)
    loop.start()
    time.sleep(0.5)                      # several passes, each failing on the missing tables
    assert loop.is_alive()
    migrate(broken.database_url)         # the database comes back: the next pass works
    pending = SqlPendingTickets(make_sessions(broken.database_url))
    pending.add(PendingTicket("ussd:l3:complaint", "+221770000001", "1000001", "complaint", "billing",
                              "Billing dispute", "pending"))
    try:
        assert _until(lambda: pending.for_user("+221770000001")[0].status == "sent")
    finally:
        stop.set()
        loop.join(timeout=10)
    assert not loop.is_alive()


def _app_command(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env})


def test_python_m_app_migrate_then_worker_once(tmp_path: Path, backoffice_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'engine.db'}"
    env = {"DATABASE_URL": url, "BACKOFFICE_URL": backoffice_url, "MENUS_PATH": str(ROOT / "config/menus.yaml"),
           "SECRET_KEY": "test-worker-key"}
    migrated = _app_command("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    SqlPendingTickets(make_sessions(url)).add(PendingTicket(
        "ussd:c1:complaint", "+221770000001", "1000001", "complaint", "billing", "Billing dispute", "pending"))
    once = _app_command("worker", "--once", env=env, cwd=tmp_path)
    assert once.returncode == 0, once.stderr
    assert "'tickets_sent': 1" in once.stdout
    assert _app_command("worker", "--once", env=env, cwd=tmp_path).stdout.count("'tickets_sent': 0") == 1
    unknown = _app_command("shout", env=env, cwd=tmp_path)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
