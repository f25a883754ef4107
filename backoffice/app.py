"""The app factory: database, demo data, blueprints, API-key check and JSON error handling."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, jsonify, request

from . import billing_api, incidents_api, metering_api, notices, payments_api, vends_api, zone_outages
from .callbacks import CallbackSender
from .config import BackofficeConfig
from .context import EXTENSION_KEY, Backoffice, wall_clock
from .db import make_engine, make_session_factory
from .dev_sms import DevSmsSink
from .errors import Unauthorized, register_error_handlers
from .models import Base
from .payment_decisions import PaymentDecider
from .seed import seed_demo

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 2 * 1024 * 1024


def create_app(config: BackofficeConfig | None = None, clock: Callable[[], datetime] | None = None) -> Flask:
    """Build the back-office Flask app; creates the tables and (if ``seed_demo``) the demo data.

    ``clock`` (aware; default the wall clock) is what the date rules of requests read: the dates and
    schedule of a new arrangement, the end of a consumption window.

    ``app.extensions["backoffice"]`` is the running ``Backoffice``; call its ``close()`` when done.
    """
    config = config or BackofficeConfig.from_env()
    engine = make_engine(config.database_url)
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    if config.seed_demo:
        seed_demo(sessions)
    callbacks = CallbackSender(sessions, config.callback_secret, config.allows_callback_to,
                               backoff=config.callback_backoff)
    backoffice = Backoffice(config=config, engine=engine, sessions=sessions, callbacks=callbacks,
                            payments=PaymentDecider(sessions, callbacks, config.payment_delay),
                            clock=clock or wall_clock)

    app = Flask("backoffice", static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = backoffice
    register_error_handlers(app)

    @app.before_request
    def _require_api_key() -> None:
        if config.api_key and request.path.startswith("/api/v1"):
            given = request.headers.get("X-Api-Key", "")
            if not hmac.compare_digest(given.encode(), config.api_key.encode()):
                raise Unauthorized("missing or wrong X-Api-Key header")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    for module in (billing_api, metering_api, payments_api, vends_api, incidents_api):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(notices.blueprint)
    app.register_blueprint(zone_outages.blueprint)
    if config.dev:
        # make run's SMS sink (no SMS account in development): never served outside development mode.
        sink = app.extensions["dev_sink"] = DevSmsSink()
        app.register_blueprint(sink.blueprint())
    return app
