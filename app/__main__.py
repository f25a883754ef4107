"""``python -m app migrate`` brings the product's database up to date; ``python -m app serve``
starts the reference back office, the engine (gunicorn) and the background worker side by
side until Ctrl-C; ``python -m app worker [--once]`` runs the worker alone; ``python -m app purge``
applies the retention periods once; ``python -m app audit --account N | --number +221…`` lists the
security events of an account or of a number."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from .settings import Settings


def _wait_healthy(url: str, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def _fresh_metrics_dir() -> str:
    """An empty directory for the workers' Prometheus files (values of a previous run must not add up)."""
    path = os.path.abspath(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join("var", "prometheus"))
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    return path


def _secret_key_file(path: str = os.path.join("var", "secret_key")) -> str:
    """The server key kept in ``var/`` (made once, mode 0600): pseudonyms must stay the same across runs."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
        print(f"SECRET_KEY not set: generated one into {path}", file=sys.stderr)
    with open(path) as kept:
        return kept.read().strip()


def serve() -> int:
    if not os.environ.get("SECRET_KEY"):
        os.environ["SECRET_KEY"] = _secret_key_file()
    settings = Settings.from_env()
    port = os.environ.get("PORT", "8000")
    backoffice_port = os.environ.get("BACKOFFICE_PORT", "8001")
    env = dict(os.environ)
    env.setdefault("BACKOFFICE_URL", f"http://127.0.0.1:{backoffice_port}")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    if not env.get("PAYMENT_CALLBACK_SECRET"):
        # The back office and the engine must share it; none is kept in the repo, so a run without
        # one gets a fresh random secret that only these two processes know.
        env["PAYMENT_CALLBACK_SECRET"] = secrets.token_hex(32)
        print("PAYMENT_CALLBACK_SECRET not set: using a random one for this run", file=sys.stderr)
    # A SIGTERM (a supervisor, `timeout`) stops the children too, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    backoffice = subprocess.Popen([sys.executable, "-m", "backoffice", "serve", "--port", backoffice_port], env=env)
    children = [backoffice]
    try:
        if not _wait_healthy(f"http://127.0.0.1:{backoffice_port}/healthz"):
            print("the back office did not start; see the lines above", file=sys.stderr)
            return 1
        workers = os.environ.get("WEB_CONCURRENCY") or ("2" if settings.redis_url else "1")
        env["PROMETHEUS_MULTIPROC_DIR"] = _fresh_metrics_dir()
        engine = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"0.0.0.0:{port}",
                                   "--workers", workers, "--threads", "4", "--access-logfile", "-",
                                   "--config", "python:app.gunicorn_conf", "wsgi:app"], env=env)
        children.append(engine)
        children.append(subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env))
        print(f"\n  USSD callback: POST http://127.0.0.1:{port}/ussd/africastalking"
              f"\n  back office:   http://127.0.0.1:{backoffice_port}/healthz   (Ctrl-C stops both)\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return next(child.returncode for child in children if child.poll() is not None) or 0
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app")
    parser.add_argument("command", choices=["migrate", "serve", "worker", "purge", "audit"])
    parser.add_argument("--once", action="store_true", help="worker: one pass, then exit")
    parser.add_argument("--account", help="audit: the events concerning this account number")
    parser.add_argument("--number", help="audit: the events of this phone number (E.164)")
    args = parser.parse_args(argv)
    if args.command in ("purge", "audit"):
        from .records import audit_command, purge_command

        return purge_command() if args.command == "purge" else audit_command(args.account, args.number)
    if args.command == "migrate":
        from .storage import migrate

        migrate(Settings.from_env().database_url)
        return 0
    if args.command == "worker":
        import logging

        from .worker import run_forever, run_once

        settings = Settings.from_env()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if args.once:
            print(run_once(settings))
        else:
            try:
                run_forever(settings, float(os.environ.get("WORKER_INTERVAL_SECONDS", "30")))
            except KeyboardInterrupt:
                pass
        return 0
    return serve()


if __name__ == "__main__":
    sys.exit(main())
