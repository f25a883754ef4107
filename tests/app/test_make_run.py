"""``python -m app serve`` (what ``make run`` starts): loopback by default, one line about the
payment-callback secret, a banner naming its processes (the chatbot's action server among them), ``/metrics`` on the internal
``METRICS_PORT`` only, and no ``transitions`` chatter in the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from ..support.services import start_serving, wait_until_up

ROOT = Path(__file__).resolve().parents[2]


def test_serve_binds_loopback_announces_itself_once_and_keeps_metrics_internal(settings, tmp_path):
    log_path = tmp_path / "serve.log"

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        port, backoffice_port, metrics_port, actions_port, smtp_port = ports
        env = {**os.environ, "PORT": str(port), "BACKOFFICE_PORT": str(backoffice_port),
               "METRICS_PORT": str(metrics_port), "DATABASE_URL": settings.database_url,
               "REDIS_URL": settings.redis_url or "", "WEB_CONCURRENCY": "1", "LOG_LEVEL": "INFO",
               "BACKOFFICE_DATABASE_URL": f"sqlite:///{tmp_path / 'backoffice.db'}",
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), "WORKER_INTERVAL_SECONDS": "3600",
               "BACKOFFICE_DEV": "1", "SECRET_KEY": "test-serve-key", "BACKOFFICE_DEV_SMTP_PORT": str(smtp_port),
               "RASA_ACTIONS_PORT": str(actions_port), "RASA_ACTION_TOKEN": "test-action-token",
               "RASA_IDENTITY_SECRET": "test-identity-key"}
        for name in ("HOST", "PAYMENT_CALLBACK_SECRET", "BACKOFFICE_URL", "PUBLIC_BASE_URL", "USSD_GATEWAY_TOKEN",
                     "AT_API_KEY", "AT_API_URL", "AT_USERNAME", "SMTP_URL"):
            env.pop(name, None)
        with log_path.open("w") as log_file:
            return subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, stdout=log_file,
                                    stderr=subprocess.STDOUT)

    # A port taken meanwhile stops serve (any child's exit stops it) with the child's "address in use" in its log.
    server, ports = start_serving(launch, lambda ports: f"http://127.0.0.1:{ports[0]}/healthz", log_path, ports=5)
    port, backoffice_port, metrics_port, actions_port, _ = ports
    try:
        hop = requests.post(f"http://127.0.0.1:{port}/ussd/africastalking", timeout=10, data={
            "sessionId": "ATUid_serve", "serviceCode": "*123#", "phoneNumber": "+221770000001", "text": ""})
        assert hop.status_code == 200 and hop.text.startswith("CON ")
        web = requests.get(f"http://127.0.0.1:{port}/web/", timeout=10)
        assert web.status_code == 200 and "<h1>Connexion</h1>" in web.text
        assert requests.get(f"http://127.0.0.1:{port}/web/static/web.css", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404
        internal = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        hops = sum(s.value for family in text_string_to_metric_families(internal.text)
                   if family.name == "engine_hops" for s in family.samples)
        assert hops == 1
        # No SMS account: the reply to an SMS lands in the back office's development sink, readable.
        requests.post(f"http://127.0.0.1:{port}/sms/africastalking", timeout=10, data={
            "from": "+221770000002", "to": "21212", "text": "HELP", "id": "ATXid_serve_1", "date": "x"})
        sink = requests.get(f"http://127.0.0.1:{backoffice_port}/dev/sms", timeout=5).text
        assert "**********002" in sink and "ElecNet SMS commands:" in sink and "+221770000002" not in sink
        # E-mail too: the code that confirms an address, sent by the worker, shows on the same page.
        hop = requests.post(f"http://127.0.0.1:{port}/sms/africastalking", timeout=10, data={
            "from": "+221770000002", "to": "21212", "text": "EMAIL ops@entreprise.sn", "id": "ATXid_serve_2",
            "date": "x"})
        assert hop.status_code == 200
        deadline = time.monotonic() + 20
        while "your e-mail confirmation code is" not in sink and time.monotonic() < deadline:
            time.sleep(0.2)
            sink = requests.get(f"http://127.0.0.1:{backoffice_port}/dev/sms", timeout=5).text
        assert "your e-mail confirmation code is" in sink, log_path.read_text()[-3000:]
        assert "<td>e-mail</td><td>o***@entreprise.sn</td>" in sink
        assert "ops@entreprise.sn" not in sink
        wait_until_up(f"http://127.0.0.1:{actions_port}/health", server)
        assert requests.post(f"http://127.0.0.1:{actions_port}/webhook", json={}, timeout=5).status_code == 401
        listed = requests.get(f"http://127.0.0.1:{actions_port}/actions?token=test-action-token", timeout=5)
        assert listed.json() == [{"name": "action_elecnet_turn"}]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    out = log_path.read_text()
    assert f"Listening at: http://127.0.0.1:{port}" in out
    secret_lines = [line for line in out.splitlines() if "secret" in line.lower()]
    assert secret_lines == [("payment callback secret: PAYMENT_CALLBACK_SECRET not set, using a random one shared "
                             "by the engine and the back office for this run only (set it in production)")]
    assert "the product's processes (Ctrl-C stops them all)" in out
    assert "1. engine (granian, 1 worker(s) of 4 thread(s)): POST http://127.0.0.1:" in out
    assert "2. back office" in out and "3. worker" in out
    assert "customers' web pages (sign-in by SMS code): http://127.0.0.1:" in out
    assert (f"agents: console http://127.0.0.1:{port}/console/  simulator http://127.0.0.1:{port}/simulator/"
            in out)
    assert (f"4. chatbot action server (rasa-sdk):    POST http://127.0.0.1:{actions_port}/webhook "
            "(token: RASA_ACTION_TOKEN)") in out
    assert f"metrics: http://127.0.0.1:{metrics_port}/metrics (internal port, METRICS_PORT)" in out
    assert "transitions" not in out
    assert "USSD_GATEWAY_TOKEN is not set" in out
    assert (f"SMS and e-mail (no AT_API_KEY: nothing leaves this machine): read them at "
            f"http://127.0.0.1:{backoffice_port}/dev/sms") in out
