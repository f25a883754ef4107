"""The back office under gunicorn: ``python -m backoffice serve --workers N`` with N > 1.

werkzeug's development server runs one process: under load the back office answered the engine's
balance calls from one core and became the bottleneck of every hop that reads fresh figures. With
several workers each process builds its own app (connections, timers and callback threads of its own,
after the fork); the tables and the demo data are made once, in the master, before any worker starts.
The deciders are safe side by side (a payment leaves ``pending`` through one conditional UPDATE). The
MQTT reading feed, when configured, runs once, in the master.

gthread workers keep the engine's HTTP/1.1 connections open between calls, as the development server's
keep-alive handler did.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from engine.masking import MaskNumbersFilter

from .app import create_app
from .config import BackofficeConfig
from .context import EXTENSION_KEY, Backoffice

__all__ = ["serve_with_gunicorn"]


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("GET /api/v1/notices" in message and '" 200 ' in message)


class _BackofficeServer(BaseApplication):
    def __init__(self, config: BackofficeConfig, options: dict[str, Any]) -> None:
        self.backoffice_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # in each worker, after the fork: its own engine and connection pool, timers and threads
        app = create_app(self.backoffice_config)
        backoffice: Backoffice = app.extensions[EXTENSION_KEY]
        self.cfg.set("worker_exit", lambda _server, _worker: backoffice.close())
        return app


def serve_with_gunicorn(config: BackofficeConfig, host: str, port: int, workers: int, threads: int = 4) -> int:
    """Serve the back office with ``workers`` gunicorn gthread workers until stopped."""
    # Tables and demo data once, before the workers (which would otherwise race to create them).
    create_app(config).extensions[EXTENSION_KEY].close()
    # The access log is off as under the development server's quiet filter; errors keep their numbers masked.
    for name in ("gunicorn.error", "gunicorn.access"):
        logging.getLogger(name).addFilter(MaskNumbersFilter())
        logging.getLogger(name).addFilter(_Quiet())
    options = {"bind": f"{host}:{port}", "workers": workers, "threads": threads, "worker_class": "gthread",
               "accesslog": None, "loglevel": "warning", "keepalive": 30, "proc_name": "backoffice"}
    _BackofficeServer(config, options).run()
    return 0
