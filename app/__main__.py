"""``python -m app migrate`` brings the product's database up to date; ``python -m app serve``
seeds and starts the reference back office, the engine (gunicorn, on ``HOST``, loopback by
default) and the background worker side by side until Ctrl-C, with ``/metrics`` on the
internal ``METRICS_PORT`` when set; ``python -m app worker [--once]`` runs the worker alone;
``python -m app actions`` serves the chatbot's rasa-sdk action server alone (``serve`` starts it too,
on ``RASA_ACTIONS_PORT``, 5055 by default, ``off`` to leave it out); ``python -m app pin-unlock <msisdn>`` is an agent lifting a customer's PIN lock (the console's
"Unlock the PIN" takes the same path, ``app.agent_actions``); ``python -m app purge``
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
from collections.abc import Callable, Mapping

from .logging_setup import configure_logging
from .menu_gate import refuse_menus_with_errors
from .ops import serve_metrics
from .settings import Settings
from .web_servers import DEFAULT_SERVER, LABELS, SERVERS, THREADS, engine_command


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


def _callback_secret_line(env: dict[str, str]) -> str:
    """The one start-up line about the secret the back office signs payment callbacks with."""
    if env.get("PAYMENT_CALLBACK_SECRET"):
        return "payment callback secret: PAYMENT_CALLBACK_SECRET from the environment"
    # The back office and the engine must share it; none is kept in the repo, so a run without
    # one gets a fresh random secret that only these processes know.
    env["PAYMENT_CALLBACK_SECRET"] = secrets.token_hex(32)
    return ("payment callback secret: PAYMENT_CALLBACK_SECRET not set, using a random one shared by the engine "
            "and the back office for this run only (set it in production)")
def _secret_key_file(path: str = os.path.join("var", "secret_key"), name: str = "SECRET_KEY",
                     make: Callable[[], str] = lambda: secrets.token_hex(32)) -> str:
    """A key kept in ``var/`` (made once, mode 0600), so that what it made (pseudonyms, sealed codes)
    stays valid across runs."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(make())
        print(f"{name} not set: generated one into {path}", file=sys.stderr)
    with open(path) as kept:
        return kept.read().strip()


def _dev_mode(env: Mapping[str, str]) -> bool:
    """A development run (``make run`` sets ``BACKOFFICE_DEV=1``)."""
    return env.get("BACKOFFICE_DEV", "").strip().lower() in ("1", "true", "yes", "on")


def _outbox_seal_key_file(path: str = os.path.join("var", "outbox_seal_key")) -> str:
    """The development key sealing one-time codes in the outbox, shared by the engine and the worker."""
    from cryptography.fernet import Fernet

    return _secret_key_file(path, "OUTBOX_SEAL_KEY", lambda: Fernet.generate_key().decode())


def _sms_sink_line(env: dict[str, str], backoffice_port: str) -> str | None:
    """Without an SMS account, a development run sends SMS (and, without SMTP_URL, e-mail) to the back
    office's sink, a page to read."""
    if env.get("AT_API_KEY") or not _dev_mode(env):
        return None
    from backoffice.dev_sms import DEV_SMS_API_KEY

    env["AT_API_KEY"], env["AT_USERNAME"] = DEV_SMS_API_KEY, "sandbox"
    env["AT_API_URL"] = f"http://127.0.0.1:{backoffice_port}/dev/africastalking/version1"
    if not env.get("SMTP_URL"):
        # E-mail too (codes that confirm an address, messages of customers who chose e-mail).
        smtp_port = env.setdefault("BACKOFFICE_DEV_SMTP_PORT", "8025")
        env["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_port}"
    return f"http://127.0.0.1:{backoffice_port}/dev/sms"


def serve() -> int:
    if not os.environ.get("SECRET_KEY"):
        os.environ["SECRET_KEY"] = _secret_key_file()
    if not os.environ.get("OUTBOX_SEAL_KEY") and _dev_mode(os.environ):
        # Development only: in production the engine and the worker must be given the same key.
        os.environ["OUTBOX_SEAL_KEY"] = _outbox_seal_key_file()
    settings = Settings.from_env_or_refuse()
    configure_logging(settings.log_level)
    refuse_menus_with_errors(settings.menus_path)   # before anything starts: the workers would refuse them too
    if (os.environ.get("WEB_SERVER", "").strip() or DEFAULT_SERVER) not in SERVERS:
        print(f"WEB_SERVER must be one of {', '.join(SERVERS)}", file=sys.stderr)
        return 2
    threads_setting = os.environ.get("WEB_THREADS", "").strip() or str(THREADS)
    if not threads_setting.isdigit() or int(threads_setting) < 1:
        print("WEB_THREADS must be a whole number of threads per worker, 1 or more", file=sys.stderr)
        return 2
    # Loopback unless told otherwise: the engine answers as any customer to whoever reaches it.
    host = os.environ.get("HOST", "").strip() or "127.0.0.1"
    port = os.environ.get("PORT", "8000")
    backoffice_port = os.environ.get("BACKOFFICE_PORT", "8001")
    env = dict(os.environ)
    env.setdefault("BACKOFFICE_URL", f"http://127.0.0.1:{backoffice_port}")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    print(_callback_secret_line(env), file=sys.stderr, flush=True)
    sms_sink = _sms_sink_line(env, backoffice_port)
    # A SIGTERM (a supervisor, `timeout`) stops the children too, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Seeding with the run's environment (idempotent): one secret, one message about it.
    if subprocess.run([sys.executable, "-m", "backoffice", "seed"], env=env, check=False).returncode != 0:
        print("seeding the back office failed; see the lines above", file=sys.stderr)
        return 1
    # On the production set-up (Redis) the reference back office runs under gunicorn too, as a real
    # billing system would be served: one werkzeug process was the bottleneck of every balance hop.
    # The development sink keeps what it took in its process's memory (and runs the dev SMTP server there):
    # with it, one back-office process, so the page shows every message; else 2 under Redis (production-like).
    backoffice_workers = os.environ.get("BACKOFFICE_WORKERS") or ("2" if settings.redis_url and not sms_sink else "1")
    backoffice = subprocess.Popen([sys.executable, "-m", "backoffice", "serve", "--port", backoffice_port,
                                   "--workers", backoffice_workers], env=env)
    children = [backoffice]
    stop_metrics = None
    try:
        if not _wait_healthy(f"http://127.0.0.1:{backoffice_port}/healthz"):
            print("the back office did not start; see the lines above", file=sys.stderr)
            return 1
        workers = os.environ.get("WEB_CONCURRENCY") or ("2" if settings.redis_url else "1")
        metrics_dir = env["PROMETHEUS_MULTIPROC_DIR"] = _fresh_metrics_dir()
        # The server chosen by measurement (app/web_servers.py, README "Benchmark"); WEB_SERVER picks another.
        server = os.environ.get("WEB_SERVER", "").strip() or DEFAULT_SERVER
        threads = int(threads_setting)
        engine = subprocess.Popen(engine_command(server, host, port, workers, threads=threads), env=env)
        children.append(engine)
        interval = os.environ.get("WORKER_INTERVAL_SECONDS", "30")
        children.append(subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env))
        actions_port = settings.rasa_actions_port
        actions_line = "off (RASA_ACTIONS_PORT=off)"
        if actions_port is not None:
            env["RASA_ACTIONS_PORT"] = str(actions_port)
            children.append(subprocess.Popen([sys.executable, "-m", "app", "actions"], env=env))
            token_from = "RASA_ACTION_TOKEN" if env.get("RASA_ACTION_TOKEN") else "var/rasa_action_token"
            actions_line = (f"POST http://{settings.rasa_actions_host}:{actions_port}/webhook "
                            f"(token: {token_from})")
        metrics_line = f"http://{host}:{port}/metrics"
        if settings.metrics_port is not None:
            stop_metrics = serve_metrics("127.0.0.1", settings.metrics_port, metrics_dir)
            metrics_line = f"http://127.0.0.1:{settings.metrics_port}/metrics (internal port, METRICS_PORT)"
        print(f"\n  the product's processes (Ctrl-C stops them all):"
              f"\n  1. engine ({LABELS[server]}, {workers} worker(s)"
              f"{'' if server == 'sync' else f' of {threads} thread(s)'}): POST http://{host}:{port}/ussd/africastalking"
              f"\n  2. back office (reference systems, {backoffice_workers} worker(s)): "
              f"http://127.0.0.1:{backoffice_port}/healthz"
              f"\n  3. worker (notifications every {settings.notify_interval_seconds:g} s;"
              f" kept tickets and payments every {interval} s)"
              f"\n  4. chatbot action server (rasa-sdk):    {actions_line}"
              f"\n  customers' web pages (sign-in by SMS code): http://{host}:{port}/web/"
              f"\n  agents: console http://{host}:{port}/console/  simulator http://{host}:{port}/simulator/"
              f"  ({_agents_signin_line(settings)})"
              f"\n  metrics: {metrics_line}"
              + (f"\n  SMS and e-mail (no AT_API_KEY: nothing leaves this machine): read them at {sms_sink}"
                 if sms_sink else "")
              + "\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return next(child.returncode for child in children if child.poll() is not None) or 0
    except KeyboardInterrupt:
        return 0
    finally:
        if stop_metrics is not None:
            stop_metrics()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def _agents_signin_line(settings: Settings) -> str:
    if settings.oidc_issuer:
        return f"sign-in by OpenID Connect at {settings.oidc_issuer}"
    if settings.agents_dev_signin:
        return "local DEVELOPMENT sign-in: set OIDC_ISSUER in production"
    return "no sign-in configured: set OIDC_ISSUER and its client (see README)"


def _pin_unlock(msisdn: str) -> int:
    """An agent lifts a PIN lock (the only way out of a fourth lockout in a row); audited, SMS queued."""

    from engine.masking import mask
    from engine.redis_url import redis_from_url

    from .agent_actions import unlock_pin
    from .factory import build_identity_cache, build_security_audit, build_sessions

    if not msisdn.startswith("+") or not msisdn[1:].isdigit():
        print("usage: python -m app pin-unlock +221770000001", file=sys.stderr)
        return 2
    settings = Settings.from_env_or_refuse()
    sessions = build_sessions(settings)
    client = redis_from_url(settings.redis_url, socket_timeout=1.0) if settings.redis_url else None
    if not unlock_pin(sessions, build_identity_cache(settings, client), build_security_audit(settings, sessions),
                      msisdn, by="an agent (command line)"):
        print(f"no locked PIN for {mask(msisdn)}")
        return 1
    print(f"PIN unlocked for {mask(msisdn)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app")
    parser.add_argument("command", choices=["migrate", "serve", "worker", "actions", "pin-unlock",
                                                     "purge", "audit"])
    parser.add_argument("msisdn", nargs="?", help="pin-unlock: the customer's number (E.164)")
    parser.add_argument("--once", action="store_true", help="worker: one pass, then exit")
    parser.add_argument("--account", help="audit: the events concerning this account number")
    parser.add_argument("--number", help="audit: the events of this phone number (E.164)")
    args = parser.parse_args(argv)
    if args.command in ("purge", "audit"):
        from .records import audit_command, purge_command

        return purge_command() if args.command == "purge" else audit_command(args.account, args.number)
    if args.command == "migrate":
        from .storage import migrate

        migrate(Settings.from_env_or_refuse().database_url)
        return 0
    if args.command == "pin-unlock":
        return _pin_unlock(args.msisdn or "")
    if args.command == "actions":
        from .actions_server import serve_actions

        return serve_actions()
    if args.command == "worker":
        from .secret_gate import refuse_worker_without_secret_key
        from .worker import run_forever, run_once

        settings = Settings.from_env_or_refuse()
        refuse_worker_without_secret_key(settings)
        configure_logging(settings.log_level, secrets=[settings.payment_callback_secret,
                                                       settings.backoffice_api_key or ""])
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
