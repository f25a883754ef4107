"""A menu file with errors is never served: ``python -m app serve``, the WSGI entry point (``gunicorn wsgi:app``)
and the chatbot's action server each stop at start with the linter's problems (file:line), before anything
listens, with the status every start-up refusal uses (3); the product's own menus start as before. The real
server commands stop once (no worker started again and again, each printing the same problems)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.web_servers import SERVERS, engine_command

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "menus" / "fixtures" / "with_product_steps" / "guest_flow_pays.yaml"
PROBLEM = "guest_flow_pays.yaml:41: error: node 'pay': step 'payments.full' needs a customer"


def _run(*argv: str, menus: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MENUS_PATH": str(menus), "DATABASE_URL": f"sqlite:///{tmp_path / 'product.db'}",
           "SECRET_KEY": "test-gate-key", "PORT": "1", "BACKOFFICE_PORT": "1", "RASA_ACTIONS_PORT": "1",
           "RASA_ACTION_TOKEN": "test-action-token"}
    env.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, *argv], check=False, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("argv", [("-m", "app", "serve"), ("-m", "app", "actions"), ("-c", "import wsgi")],
                         ids=["serve", "actions", "wsgi"])
def test_a_menu_file_with_errors_stops_the_server_at_start_with_its_problems(argv, tmp_path):
    done = _run(*argv, menus=BROKEN, tmp_path=tmp_path)
    assert done.returncode == 3
    assert PROBLEM in done.stderr
    assert f"{BROKEN}: 1 error(s) in the menus: not served" in done.stderr
    assert "Traceback" not in done.stderr
    # Stopped before anything started: no back office seeded, no server announced.
    assert "POST http://" not in done.stderr + done.stdout


@pytest.mark.parametrize("server", SERVERS)
def test_the_engine_server_with_two_workers_stops_once_on_a_broken_menu_file(server, tmp_path):
    """As ``python -m app serve`` starts it; before, gunicorn started a refused worker again forever."""
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    env = {**os.environ, "MENUS_PATH": str(BROKEN), "DATABASE_URL": f"sqlite:///{tmp_path / 'product.db'}",
           "SECRET_KEY": "test-gate-key", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    env.pop("REDIS_URL", None)
    command = engine_command(server, "127.0.0.1", 0 if server != "granian" else _free_port(), workers=2)
    try:
        done = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as still:
        pytest.fail(f"{server} still running after 90 s, restarting its workers: {str(still.stderr)[-400:]}")
    assert done.returncode != 0
    assert PROBLEM in done.stderr
    assert "Traceback" not in done.stderr
    said = done.stderr.count(f"{BROKEN}: 1 error(s) in the menus: not served")
    if server == "granian":
        # granian has no master hook: each worker lints at import, and the first one's exit stops granian.
        assert 1 <= said <= 2, done.stderr[-400:]
    else:
        assert done.returncode == 3 and said == 1, done.stderr[-400:]   # linted in the master, no worker started


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_products_menus_pass_the_gate(tmp_path):
    done = _run("-c", "import wsgi; print(wsgi.app.name)", menus=ROOT / "config" / "menus.yaml", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr.lower().replace("error(s)", "")
