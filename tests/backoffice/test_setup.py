"""Configuration, idempotent seeding, the command line, and the OpenAPI file matching the routes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import flask
import pytest
import yaml
from sqlalchemy import func, select

from backoffice import BackofficeConfig, create_app
from backoffice.models import Bill, Customer, Outage, Payment, Reading
from backoffice.seed import seed_demo

ROOT = Path(__file__).resolve().parents[2]


def test_config_from_env(caplog: pytest.LogCaptureFixture) -> None:
    config = BackofficeConfig.from_env({})
    assert config.database_url == "sqlite:///var/backoffice.db"
    assert (config.callback_secret, config.payment_approval, config.payment_delay) == ("dev-only-secret", "auto", 1.0)
    assert config.api_key is None and config.mqtt_url is None and config.seed_demo
    assert "PAYMENT_CALLBACK_SECRET" in caplog.text
    config = BackofficeConfig.from_env({
        "BACKOFFICE_DATABASE_URL": "sqlite:///x.db", "BACKOFFICE_API_KEY": "k", "PAYMENT_CALLBACK_SECRET": "s",
        "BACKOFFICE_PAYMENT_APPROVAL": "manual", "BACKOFFICE_PAYMENT_DELAY": "0.25", "MQTT_URL": "mqtt://h:1883",
    })
    assert config == BackofficeConfig("sqlite:///x.db", "k", "s", "manual", 0.25, "mqtt://h:1883", True)
    with pytest.raises(ValueError, match="BACKOFFICE_PAYMENT_APPROVAL"):
        BackofficeConfig.from_env({"BACKOFFICE_PAYMENT_APPROVAL": "sometimes"})
    with pytest.raises(ValueError, match="BACKOFFICE_PAYMENT_DELAY"):
        BackofficeConfig.from_env({"BACKOFFICE_PAYMENT_DELAY": "soon"})


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
        if rule.endpoint == "static":
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
