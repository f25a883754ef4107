"""gunicorn run by hand with the product's config (``gunicorn --config python:app.gunicorn_conf wsgi:app``, as an
operator might, outside ``python -m app serve``): without a metrics directory a worker that exits is replaced
quietly, where the config's exit hook used to raise in the master at every worker's exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.ports import reserve_port, reserved_socket

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_that_exits_is_replaced_without_an_error_when_no_metrics_directory_is_set(tmp_path: Path) -> None:
    listener = reserved_socket(reserve_port())
    assert listener is not None
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'product.db'}", "SECRET_KEY": "test-by-hand-key"}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "REDIS_URL"):
        env.pop(name, None)
    subprocess.run([sys.executable, "-m", "app", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=120)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        master = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"fd://{listener.fileno()}",
                                   "--workers", "1", "--config", "python:app.gunicorn_conf", "wsgi:app"],
                                  cwd=ROOT, env=env, pass_fds=(listener.fileno(),), stdout=out,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/healthz"
    try:
        first = _worker_pid(url, master)
        os.kill(first, signal.SIGKILL)   # a worker that dies (the OOM killer, a crash)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _worker_pid(url, master) == first:
            time.sleep(0.2)
        assert _worker_pid(url, master) != first   # replaced, and serving
    finally:
        master.terminate()
        master.wait(timeout=30)
        listener.close()
    said = log.read_text(errors="replace")
    assert "Traceback" not in said and "TypeError" not in said, said[-2000:]


def _worker_pid(url: str, master: subprocess.Popen[bytes]) -> int:
    """The pid of the worker that answers ``url`` (the master's only child), once it answers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert master.poll() is None, "gunicorn's master exited"
        try:
            if requests.get(url, timeout=2).ok:
                children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
                if len(children) == 1:
                    return int(children[0])
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")
