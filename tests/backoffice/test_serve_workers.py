"""``python -m backoffice serve --workers 2`` (what ``make run`` starts on the production set-up): the back office
under gunicorn answers from several processes that share one database, and stops whole on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.ports import closed_port
from tests.support.services import start_serving

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_two_workers_share_the_payments_and_stop_with_the_server(tmp_path: Path) -> None:
    receiver = closed_port()   # nothing listens for the callback: it is only retried
    env = {**os.environ, "BACKOFFICE_CALLBACK_HOSTS": f"127.0.0.1:{receiver}", "BACKOFFICE_DEV": "1", "BACKOFFICE_PAYMENT_APPROVAL": "manual",
           "BACKOFFICE_DATABASE_URL": f"sqlite:///{tmp_path / 'backoffice.db'}", "PAYMENT_CALLBACK_SECRET": "s"}
    log_path = tmp_path / "serve.log"

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        with log_path.open("wb") as log:
            return subprocess.Popen([sys.executable, "-m", "backoffice", "serve", "--port", str(ports[0]),
                                     "--workers", "2"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    server, [port] = start_serving(launch, lambda ports: f"http://127.0.0.1:{ports[0]}/healthz", log_path)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        # The first worker may answer before the second has booted: wait for both (a wait, not a speed check).
        deadline = time.monotonic() + 30
        while len(_children(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_children(server.pid)) == 2
        # a fresh connection per call: gunicorn's workers take them in turn, each sees the others' writes
        started = requests.post(f"{api}/payments", headers={"Idempotency-Key": "k-workers-1"}, timeout=10, json={
            "account_number": "1000001", "msisdn": "+221770000001", "amount": "5500", "purpose": "bill",
            "callback_url": f"http://127.0.0.1:{receiver}/cb"})
        assert started.status_code == 202, started.text
        payment = started.json()["payment_id"]
        for _ in range(4):
            assert requests.get(f"{api}/payments/{payment}", timeout=10).json()["status"] == "pending"
        assert requests.post(f"{api}/payments/{payment}/approve", timeout=10).status_code == 200
        for _ in range(4):
            assert requests.get(f"{api}/payments/{payment}", timeout=10).json()["status"] == "succeeded"
        bills = requests.get(f"{api}/accounts/1000001/bills", timeout=10).json()["bills"]
        assert sum(1 for bill in bills if bill["status"] == "unpaid") == 1  # the oldest bill is paid
    finally:
        workers = _children(server.pid)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
