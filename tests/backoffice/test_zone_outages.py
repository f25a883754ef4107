"""The back office declares outages and restorations for a zone (API and command line) and keeps
them in its notice feed, in order, for the product to read by cursor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


def _feed(api: str, after: int = 0) -> dict[str, Any]:
    answer = requests.get(f"{api}/notices", params={"after": after}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_declare_then_restore_a_zone_appears_in_the_feed_once_each(api):
    declared = requests.post(f"{api}/zones/DKR-PLATEAU/outage",
                             json={"eta": "2026-11-26T18:30:00Z", "cause": "transformer"}, timeout=5)
    assert declared.status_code == 201, declared.text
    outage_id = declared.json()["outage_id"]
    ongoing = requests.get(f"{api}/outages", params={"zone": "DKR-PLATEAU"}, timeout=5).json()["outages"]
    assert [o["outage_id"] for o in ongoing] == [outage_id]
    restored = requests.post(f"{api}/zones/DKR-PLATEAU/restore", timeout=5)
    assert restored.status_code == 200 and restored.json()["outage_ids"] == [outage_id]
    again = requests.post(f"{api}/zones/DKR-PLATEAU/restore", timeout=5)
    assert again.status_code == 409 and again.json()["error"] == "no_ongoing_outage"
    feed = _feed(api)
    assert [(n["kind"], n["zone"]) for n in feed["notices"]] == [("outage_declared", "DKR-PLATEAU"),
                                                                 ("power_restored", "DKR-PLATEAU")]
    assert feed["notices"][0]["fields"]["eta"].startswith("2026-11-26T18:30:00")
    assert feed["notices"][1]["fields"]["outage_ids"] == [outage_id]
    assert _feed(api, after=feed["next"]) == {"notices": [], "next": feed["next"]}


def test_bad_declarations_are_answered_in_json(api):
    bad_eta = requests.post(f"{api}/zones/DKR-PLATEAU/outage", json={"eta": "tomorrow"}, timeout=5)
    assert bad_eta.status_code == 422 and "eta" in bad_eta.json()["message"]
    too_long = requests.post(f"{api}/zones/{'Z' * 41}/outage", timeout=5)
    assert too_long.status_code == 422
    not_json = requests.post(f"{api}/zones/DKR-PLATEAU/outage", data="[1]",
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert not_json.status_code == 400
    assert requests.get(f"{api}/notices", params={"after": "x"}, timeout=5).status_code == 422


def test_the_command_line_declares_and_restores(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PAYMENT_CALLBACK_SECRET": "x",
           "BACKOFFICE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "backoffice", "outage", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)

    declared = run("declare", "THIES-SUD", "--eta", "2026-11-26T20:00:00Z", "--cause", "storm")
    assert declared.returncode == 0, declared.stderr
    assert "declared in zone THIES-SUD" in declared.stdout
    restored = run("restore", "THIES-SUD")
    assert restored.returncode == 0 and "power restored in zone THIES-SUD" in restored.stdout
    nothing = run("restore", "THIES-SUD")
    assert nothing.returncode == 1 and "no ongoing outage in zone THIES-SUD" in nothing.stderr
    assert run("declare", "THIES-SUD", "--eta", "soon").returncode == 1


def test_the_command_line_issues_a_bill_once(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PAYMENT_CALLBACK_SECRET": "x",
           "BACKOFFICE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    subprocess.run([sys.executable, "-m", "backoffice", "seed"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "backoffice", "bill", "issue", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)

    issued = run("1000001", "9800", "--kwh", "61", "--due", "2027-01-15", "--period", "2026-12")
    assert issued.returncode == 0 and "bill B-1000001-2026-12 issued" in issued.stdout, issued.stderr
    again = run("1000001", "9800", "--due", "2027-01-15", "--period", "2026-12")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert run("9999999", "100", "--due", "2027-01-15").returncode == 1
