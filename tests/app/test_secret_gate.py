"""IT deploys with sessions in Redis (several workers may serve one conversation) and forgets ``SECRET_KEY``:
the server refuses to start and says why, instead of each worker deriving the customers' one-time codes under
a random key of its own (a code sent by one worker "wrong" on the other, now and then). The embedded default
(no Redis: one process) still starts without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAYS = "SECRET_KEY is not set while REDIS_URL is"
WORKER_SAYS = "SECRET_KEY is not set: the worker opens the one-time codes the engine sealed"


def _environment(settings, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "BACKOFFICE_URL": settings.backoffice_url,
           "RASA_ACTION_TOKEN": "test-action-token", "LOG_LEVEL": "WARNING"}
    for name in ("SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR", "METRICS_PORT"):
        env.pop(name, None)
    return {**env, **extra}


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_gunicorn_with_two_workers_on_redis_and_no_secret_key_refuses_to_start(settings):
    env = _environment(settings, REDIS_URL=settings.redis_url or "")
    done = _run(["-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "2", "wsgi:app"], env)
    # gunicorn stops ("Worker failed to boot"), where it would boot workers forever (the run's timeout): with status 3,
    # or 1 when its HaltServer escapes the arbiter's loop (a worker refused before the loop began: a race of its own)
    assert done.returncode in (1, 3), done.stderr[-300:]
    assert "Worker failed to boot" in done.stderr
    assert SAYS in done.stderr
    assert "Set SECRET_KEY to the same random value in every process" in done.stderr


def test_the_chat_action_server_on_redis_without_secret_key_refuses_to_start(settings, tmp_path):
    env = _environment(settings, REDIS_URL=settings.redis_url or "", RASA_ACTIONS_PORT="1")
    done = _run(["-m", "app", "actions"], env)
    assert done.returncode == 3
    assert SAYS in done.stderr
    assert "Traceback" not in done.stderr


def test_with_its_secret_key_the_redis_deployment_starts(settings):
    env = _environment(settings, REDIS_URL=settings.redis_url or "", SECRET_KEY="test-gate-key")
    done = _run(["-c", "import wsgi; print(wsgi.app.name)"], env)
    assert done.returncode == 0, done.stderr
    assert SAYS not in done.stderr


def test_the_embedded_default_one_process_starts_without_a_secret_key(settings, tmp_path):
    env = _environment(settings, DATABASE_URL=f"sqlite:///{tmp_path / 'product.db'}")
    env.pop("REDIS_URL", None)
    done = _run(["-c", "import wsgi; print(wsgi.app.name)"], env)
    assert done.returncode == 0, done.stderr
    assert SAYS not in done.stderr


def test_the_worker_without_secret_key_refuses_to_start_even_on_the_embedded_default(settings, tmp_path):
    """The worker is always a process of its own: with a random key it could open no code the engine sealed."""
    env = _environment(settings, DATABASE_URL=f"sqlite:///{tmp_path / 'product.db'}")
    env.pop("REDIS_URL", None)
    done = _run(["-m", "app", "worker", "--once"], env)
    assert done.returncode == 3
    assert WORKER_SAYS in done.stderr and "Set SECRET_KEY to the engine's value" in done.stderr
    assert "Traceback" not in done.stderr
