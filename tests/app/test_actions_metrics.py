"""``python -m app actions`` run alone (no ``make run`` around it, so no shared ``PROMETHEUS_MULTIPROC_DIR``)
shows its own metrics as the engine's server does: ``GET /metrics`` on its own port, or, with ``METRICS_PORT``,
on ``127.0.0.1:METRICS_PORT`` only. A chat guest's message, posted as the Rasa server posts it, is read back there
(a hop of channel ``rasa``, a guest conversation admitted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ..channels.rasa_chat import action_call
from ..support.ports import on_free_port
from ..support.services import start_serving

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-action-token"

Start = Callable[..., str]


@pytest.fixture
def actions_alone(settings, tmp_path) -> Iterator[Start]:
    """Starts ``python -m app actions`` with ``extra`` environment; its base URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**extra: str) -> str:
        log_path = tmp_path / f"actions-{len(started)}.log"

        def launch(ports: list[int]) -> subprocess.Popen[bytes]:
            env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url or "",
                   "BACKOFFICE_URL": settings.backoffice_url, "RASA_ACTIONS_PORT": str(ports[0]),
                   "RASA_ACTION_TOKEN": TOKEN, "SECRET_KEY": "test-actions-key", **extra}
            for name in ("PROMETHEUS_MULTIPROC_DIR", *(() if "METRICS_PORT" in extra else ("METRICS_PORT",))):
                env.pop(name, None)
            with log_path.open("w") as log:
                return subprocess.Popen([sys.executable, "-m", "app", "actions"], cwd=ROOT, env=env, stdout=log,
                                        stderr=subprocess.STDOUT)

        server, [port] = start_serving(launch, lambda ports: f"http://127.0.0.1:{ports[0]}/health", log_path)
        started.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in started:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def a_guest_says_hello(base: str) -> None:
    latest = {"text": "bonjour", "intent": {"name": "greet", "confidence": 0.97}, "entities": [],
              "message_id": "msg-metrics-1", "metadata": {}}
    answer = requests.post(f"{base}/webhook?token={TOKEN}", json=action_call("chat-guest-metrics", latest),
                           timeout=20)
    assert answer.status_code == 200
    assert answer.json()["responses"][0]["text"].startswith("Bienvenue chez ElecNet. Sans vous connecter:")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def assert_counted(metrics: str) -> None:
    found = samples(metrics)
    assert found[("engine_hops_total", (("channel", "rasa"), ("end", "false")))] == 1
    assert found[("chat_guest_conversations_total", (("outcome", "admitted"),))] == 1


def test_alone_its_metrics_are_on_its_own_port(actions_alone: Start):
    base = actions_alone()
    a_guest_says_hello(base)
    metrics = requests.get(f"{base}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert_counted(metrics.text)


def test_alone_with_metrics_port_they_move_to_that_internal_port(actions_alone: Start, tmp_path: Path):
    # The metrics port is only a number to the server: asked again on another if it was taken meanwhile.
    metrics_port, base = on_free_port(lambda port: (port, actions_alone(METRICS_PORT=str(port))))
    a_guest_says_hello(base)
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 404
    metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert_counted(metrics.text)
    said = "".join(log.read_text() for log in tmp_path.glob("actions-*.log"))
    assert f"metrics: http://127.0.0.1:{metrics_port}/metrics (internal port, METRICS_PORT)" in said
