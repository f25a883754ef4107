"""Configuration, idempotent seeding, the command line, and the OpenAPI file matching the routes."""

from __future__ import annotations

import queue
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import flask
import pytest
import requests
import yaml
from sqlalchemy import func, select

from backoffice import BackofficeConfig, create_app
from backoffice.callbacks import CallbackSender
from backoffice.db import make_engine, make_session_factory
from backoffice.models import Bill, Customer, Outage, Payment, Reading
from backoffice.seed import seed_demo
from tests.support.ports import closed_port

from .conftest import CallbackReceiver

ROOT = Path(__file__).resolve().parents[2]


def test_config_from_env_in_development_mode(caplog: pytest.LogCaptureFixture) -> None:
    config = BackofficeConfig.from_env({"BACKOFFICE_DEV": "1"})
    assert config.dev and config.database_url == "sqlite:///var/backoffice.db"
    assert (config.payment_approval, config.payment_delay) == ("auto", 1.0)
    assert config.api_key is None and config.mqtt_url is None and config.seed_demo
    # No shared development secret: a random one nobody else knows, different at every start.
    assert len(config.callback_secret) == 64
    assert config.callback_secret != BackofficeConfig.from_env({"BACKOFFICE_DEV": "1"}).callback_secret
    assert "PAYMENT_CALLBACK_SECRET" in caplog.text
    config = BackofficeConfig.from_env({
        "BACKOFFICE_DATABASE_URL": "sqlite:///x.db", "BACKOFFICE_API_KEY": "k", "PAYMENT_CALLBACK_SECRET": "s",
        "BACKOFFICE_PAYMENT_APPROVAL": "manual", "BACKOFFICE_PAYMENT_DELAY": "0.25", "MQTT_URL": "mqtt://h:1883",
        "BACKOFFICE_CALLBACK_HOSTS": "engine.internal:8443, 127.0.0.1",
    })
    assert config == BackofficeConfig("sqlite:///x.db", "k", "s", "manual", 0.25, "mqtt://h:1883", True,
                                      callback_hosts=("engine.internal:8443", "127.0.0.1"))
    with pytest.raises(ValueError, match="BACKOFFICE_PAYMENT_APPROVAL"):
        BackofficeConfig.from_env({"BACKOFFICE_DEV": "1", "BACKOFFICE_PAYMENT_APPROVAL": "sometimes"})
    with pytest.raises(ValueError, match="BACKOFFICE_PAYMENT_DELAY"):
        BackofficeConfig.from_env({"BACKOFFICE_DEV": "1", "BACKOFFICE_PAYMENT_DELAY": "soon"})


def test_outside_development_mode_it_needs_an_api_key_and_a_callback_secret() -> None:
    with pytest.raises(ValueError, match="BACKOFFICE_API_KEY"):
        BackofficeConfig.from_env({"PAYMENT_CALLBACK_SECRET": "s"})
    with pytest.raises(ValueError, match="PAYMENT_CALLBACK_SECRET"):
        BackofficeConfig.from_env({"BACKOFFICE_API_KEY": "k"})
    with pytest.raises(ValueError, match="PAYMENT_CALLBACK_SECRET"):
        BackofficeConfig.from_env({"BACKOFFICE_API_KEY": "k", "BACKOFFICE_DEV": "0"})
    assert not BackofficeConfig.from_env({"BACKOFFICE_API_KEY": "k", "PAYMENT_CALLBACK_SECRET": "s"}).dev


def test_serve_refuses_to_start_without_a_key_outside_development_mode(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PAYMENT_CALLBACK_SECRET": "s"}
    done = subprocess.run([sys.executable, "-m", "backoffice", "serve", "--port", str(closed_port())], check=False,
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not starting" in done.stderr and "BACKOFFICE_API_KEY" in done.stderr


def test_secrets_never_show_in_the_config_repr() -> None:
    config = BackofficeConfig(api_key="key-5f3a", callback_secret="secret-91c2")
    assert "key-5f3a" not in repr(config) and "secret-91c2" not in repr(config)
    assert "key-5f3a" not in str(config) and "callback_hosts" in repr(config)


def test_an_unkeyed_call_is_refused_outside_development_mode(backoffice_config: BackofficeConfig,
                                                            serve_with: Callable[..., str]) -> None:
    url = serve_with(backoffice_config, dev=False, api_key="k-7d1e")
    balance = f"{url}/api/v1/accounts/1000001/balance"
    refused = requests.get(balance, timeout=5)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert requests.get(balance, headers={"X-Api-Key": "wrong"}, timeout=5).status_code == 401
    keyed = requests.get(balance, headers={"X-Api-Key": "k-7d1e"}, timeout=5)
    assert keyed.status_code == 200 and keyed.json()["account_number"] == "1000001"


def test_callback_urls_only_to_configured_hosts() -> None:
    config = BackofficeConfig(api_key="k", callback_secret="s", callback_hosts=("engine.internal:8443", "127.0.0.1"))
    assert config.allows_callback_to("https://engine.internal:8443/payments/callback")
    assert config.allows_callback_to("http://127.0.0.1:8000/payments/callback")
    assert config.allows_callback_to("http://127.0.0.1:6379/anything")   # a bare host allows all its ports
    assert not config.allows_callback_to("https://engine.internal/payments/callback")    # port 443, not 8443
    assert not config.allows_callback_to("http://localhost:8000/payments/callback")
    assert not config.allows_callback_to("http://attacker.example/collect")
    assert not config.allows_callback_to("ftp://127.0.0.1/x")
    assert not config.allows_callback_to("http://127.0.0.1:99999/x")
    assert not BackofficeConfig(api_key="k", callback_secret="s").allows_callback_to("http://127.0.0.1/x")


def test_a_payment_with_a_foreign_callback_host_is_refused_and_nothing_is_signed_for_it(
        backoffice_config: BackofficeConfig, serve_with: Callable[..., str], receiver: CallbackReceiver) -> None:
    url = serve_with(backoffice_config, callback_hosts=("127.0.0.1:1",))   # the receiver's port is not it
    body = {"account_number": "1000001", "msisdn": "+221770000001", "amount": "100", "purpose": "bill",
            "callback_url": receiver.url}
    refused = requests.post(f"{url}/api/v1/payments", json=body, headers={"Idempotency-Key": "f-1"}, timeout=5)
    assert refused.status_code == 422 and "callback_url" in refused.json()["message"]
    # A URL stored before the allowlist changed is not called either.
    sender = CallbackSender(make_session_factory(make_engine("sqlite://")), "s",
                            BackofficeConfig(api_key="k", callback_secret="s",
                                             callback_hosts=("127.0.0.1:1",)).allows_callback_to)
    assert sender.send("pay-1", receiver.url, '{"event_id": "e"}') is None
    with pytest.raises(queue.Empty):
        receiver.next(timeout=0.3)


def _counts(app: flask.Flask) -> tuple[int, ...]:
    with app.extensions["backoffice"].sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(model)) or 0
                     for model in (Customer, Bill, Payment, Reading, Outage))


def test_seeding_twice_adds_nothing(backoffice_app: flask.Flask, backoffice_config: BackofficeConfig) -> None:
    first = _counts(backoffice_app)
    assert first[:2] == (3, 48) and first[3] == 5 * (90 * 24 + 1) and first[4] == 1
    assert seed_demo(backoffice_app.extensions["backoffice"].sessions) is False
    again = create_app(backoffice_config)
    try:
        assert _counts(again) == first
    finally:
        again.extensions["backoffice"].close()


def test_seed_command_creates_the_var_directory(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PAYMENT_CALLBACK_SECRET": "x"}
    run = [sys.executable, "-m", "backoffice", "seed"]
    first = subprocess.run(run, check=False, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                           text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "var" / "backoffice.db").is_file()
    second = subprocess.run(run, check=False, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                            text=True, timeout=60)
    assert "already present" in second.stdout


def _flask_paths(app: flask.Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        # The development SMS sink fakes another provider's API (backoffice/dev_sms.py): not the back office's.
        if rule.endpoint == "static" or rule.rule.startswith("/dev/"):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                routes.add((path, method.lower()))
    return routes


def test_openapi_describes_exactly_the_routes(backoffice_app: flask.Flask) -> None:
    spec = yaml.safe_load((ROOT / "backoffice" / "openapi.yaml").read_text())
    assert spec["openapi"].startswith("3.1")
    described = {(path, method) for path, item in spec["paths"].items() for method in item
                 if method in ("get", "post", "put", "patch", "delete")}
    assert described == _flask_paths(backoffice_app)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post"):
                assert operation.get("operationId"), (path, method)
                assert operation.get("responses"), (path, method)
