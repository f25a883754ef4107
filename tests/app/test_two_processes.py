"""Two engine server processes (gunicorn) behind one Redis: the hops of one session alternate
between them, and either one's /metrics counts the hops both served."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ..support.services import gunicorn_servers


@pytest.fixture
def two_servers(settings, tmp_path) -> Iterator[list[str]]:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url or "",
           "BACKOFFICE_URL": settings.backoffice_url, "PAYMENT_CALLBACK_SECRET": "test-callback-secret",
           "RESUME_WINDOW_SECONDS": "0", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "LOG_LEVEL": "WARNING",
           "SECRET_KEY": "test-two-processes-key"}
    with gunicorn_servers(env) as urls:
        yield urls


def _hops_counted(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "engine_hop_seconds":
            return sum(s.value for s in family.samples if s.name.endswith("_count"))
    return 0.0


def test_hops_alternate_between_two_processes_and_metrics_add_up(two_servers):
    form = {"sessionId": "two-processes", "serviceCode": "*123#", "phoneNumber": "+221770000001",
            "networkCode": "99999"}
    screens = []
    for hop, text in enumerate(["", "1", "1*1", "1*1*98", "1*1*98*0"]):
        url = two_servers[hop % 2]
        response = requests.post(f"{url}/ussd/africastalking", data={**form, "text": text}, timeout=10)
        assert response.status_code == 200
        screens.append(response.text)
    assert screens[0].startswith("CON ElecNet - 1000001")
    assert screens[1].startswith("CON Compte 1000001\nA payer: 12 500 FCFA")
    assert screens[2].startswith("CON Factures (choisissez):\n1. novembre 2026")
    assert "99. Préc." in screens[3]
    assert screens[4].startswith("CON Compte 1000001")
    assert _hops_counted(two_servers[0]) == _hops_counted(two_servers[1]) == 5
