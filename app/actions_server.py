"""The chatbot channel's server: rasa-sdk's action server (``POST /webhook``) over the one engine.

``python -m app actions`` serves it on ``RASA_ACTIONS_HOST``:``RASA_ACTIONS_PORT`` (loopback:5055
by default: the Rasa server reaches it by network placement). Around rasa-sdk's own app
(``rasa_sdk.endpoint.create_app``, which keeps its 400/404/449 answers) this adds:

- the shared token ``RASA_ACTION_TOKEN`` on ``/webhook`` and ``/actions``, as Rasa sends it
  (``token:`` under ``action_endpoint`` in its endpoints.yml becomes ``?token=``) or as
  ``Authorization: Bearer``; ``/health`` stays open;
- a check of the call's shape before the SDK reads it, answered in the SDK's format, so a hostile
  body never reaches the SDK's catch-all (which answers 500 and echoes the body back, a PIN with it);
- a bound on the body, compressed (``Content-Encoding: deflate``) or not;
- the guests' budget: new conversations nobody signed in, a minute, counted by the product's throttle
  (Redis under ``REDIS_URL``, shared by every process) and in ``chat_guest_conversations_total``;
- its metrics, where the engine's server puts its own: under ``make run`` (``PROMETHEUS_MULTIPROC_DIR``)
  written for the engine's ``/metrics`` to sum; run alone, ``GET /metrics`` on its own port, or on the
  internal ``127.0.0.1:METRICS_PORT`` instead when that is set.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import sys
import time
import zlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.rasa import (
    ChatLinks,
    ChatSignIn,
    GuestBudget,
    IdentityVerifier,
    MemoryChatLinks,
    RasaChannel,
    build_executor,
)
from dialogs.stores import Throttle
from engine import SessionStore
from engine.redis_url import redis_from_url
from web_fallback.customer.codes import MemorySignInStore, SignInStore
from web_fallback.customer.sign_in import SignIn, SignInRules

from .logging_setup import configure_logging
from .menu_gate import refuse_menus_with_errors
from .ops import Metrics, serve_metrics, shared_metrics
from .secret_gate import refuse_shared_sessions_without_secret_key
from .settings import Settings
from .storage.chat_links import RedisChatLinks
from .storage.sign_in_codes import RedisSignInStore

__all__ = ["MAX_BODY_BYTES", "build_action_app", "create_action_app", "serve_actions"]

log = logging.getLogger("app.actions")

# A tracker carries the conversation's events since its session started: room for a long one.
MAX_BODY_BYTES: Final = 1024 * 1024
_GUARDED: Final = ("/webhook", "/actions")


def _error(message: str, status: int, action_name: object = None) -> HTTPResponse:
    body: dict[str, Any] = {"error": message}
    if isinstance(action_name, str):
        body["action_name"] = action_name
    return response.json(body, status=status)


def _token_of(request: Request) -> str:
    given = request.args.get("token") or ""
    auth = request.headers.get("authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return given


def _body_of(request: Request) -> bytes | None:
    """The JSON text of the call (inflated when deflated), or ``None`` when larger than the bound."""
    body = request.body or b""
    if request.headers.get("content-encoding", "").lower() != "deflate":
        return body
    inflater = zlib.decompressobj()
    try:
        inflated = inflater.decompress(body, MAX_BODY_BYTES)
    except zlib.error:
        return b""
    return None if inflater.unconsumed_tail else inflated


def _shape_problem(call: object) -> str | None:
    """What is wrong with an action call that the SDK would trip over, or ``None``."""
    if not isinstance(call, Mapping):
        return "Invalid body request"
    if not isinstance(call.get("next_action"), str | None):
        return "next_action must be a string"
    if not isinstance(call.get("version"), str | None):
        return "version must be a string"
    if call.get("next_action") and not isinstance(call.get("tracker"), Mapping):
        return "tracker missing"
    tracker = call.get("tracker")
    if isinstance(tracker, Mapping):
        if not isinstance(tracker.get("sender_id"), str):
            return "tracker.sender_id must be a string"
        for name, kind in (("slots", Mapping), ("latest_message", Mapping), ("events", list)):
            if tracker.get(name) is not None and not isinstance(tracker.get(name), kind):
                return f"tracker.{name} malformed"
    if call.get("domain") is not None and not isinstance(call.get("domain"), Mapping):
        return "domain malformed"
    return None


def create_action_app(executor: ActionExecutor, token: str) -> Sanic:
    """rasa-sdk's app for ``executor``, behind ``token`` (refused when empty: never open)."""
    app = create_app(executor, cors_origins=[])
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.FALLBACK_ERROR_FORMAT = "json"

    @app.on_request
    async def _guard(request: Request) -> HTTPResponse | None:
        if request.path not in _GUARDED:
            return None
        if not token or not hmac.compare_digest(_token_of(request).encode(), token.encode()):
            log.warning("action server call refused: no or wrong token")
            return _error("Unauthorized", 401)
        if request.path != "/webhook" or request.method != "POST":
            return None
        raw = _body_of(request)
        if raw is None:
            return _error("Request body too large", 413)
        try:
            call = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _error("Invalid body request", 400)
        problem = _shape_problem(call)
        if problem is not None:
            log.info("action call refused: %s", problem)
            return _error(problem, 400, call.get("next_action") if isinstance(call, Mapping) else None)
        return None

    async def _failure(request: Request, exception: Exception) -> HTTPResponse:
        # In place of the SDK's catch-all: the status Sanic chose for its own errors, and for
        # anything else a 500 that neither echoes the request nor says what broke.
        if isinstance(exception, SanicException) and exception.status_code < 500:
            return _error(str(exception) or "Bad request", exception.status_code)
        log.error("action server failure on %s: %s", request.path, type(exception).__name__)
        return _error("Internal error", 500)

    # Sanic refuses a second handler for Exception: ours takes the SDK's place in its table.
    app.error_handler.cached_handlers[(Exception, None)] = _failure
    return app


def build_chat_sign_in(settings: Settings, deps: Any, metrics: Metrics) -> ChatSignIn:
    """The in-chat sign-in: codes through the outbox (the ``chat_code`` message), counted by the dialogs'
    throttle with the web's (one limit per number, one budget of codes for unidentified requesters), kept in
    Redis (else this process) apart from the web's."""
    from .factory import build_code_budget, sign_in_throttled

    codes: SignInStore = MemorySignInStore()
    links: ChatLinks = MemoryChatLinks()
    if settings.redis_url:
        client = redis_from_url(settings.redis_url, socket_timeout=1.0)
        codes = RedisSignInStore(client, prefix="chat:code:", visits="chat:visit:")
        links = RedisChatLinks(client)
    sender = SignIn(codes, deps.throttle, deps.outbox, deps.security,
                    SignInRules(code_ttl_seconds=settings.web_code_seconds), channel="rasa", code_kind="chat_code",
                    budget=build_code_budget(settings, deps, metrics), throttled=sign_in_throttled(metrics))
    return ChatSignIn(sender, links, codes, deps.security, code_minutes=settings.web_code_seconds // 60,
                      idle_seconds=settings.rasa_session_idle_seconds, max_seconds=settings.web_max_seconds,
                      default_region=settings.default_region)


def build_action_app(settings: Settings, store: SessionStore | None = None,
                     throttle: Throttle | None = None) -> Sanic:
    """The action server with the engine the web app has (same menus, store, back ends; the limits'
    counter ``throttle`` if given, as ``create_app`` takes it)."""
    from .factory import build_answer_ledger, build_durable_answers, build_engine

    metrics = Metrics()   # the chat's hops in the engine's histograms, as the web app's workers count theirs
    engine, parts = build_engine(settings, store, observer=metrics, throttle=throttle)
    if not settings.rasa_identity_secret:
        log.warning("RASA_IDENTITY_SECRET is not set: no front channel's claim is believed; conversations "
                    "%s.", "sign in with a code by SMS" if settings.rasa_chat_sign_in else
                    "are only told how to verify a number")
    channel = RasaChannel(IdentityVerifier(settings.rasa_identity_secret, time.time),
                          idle_seconds=settings.rasa_session_idle_seconds,
                          languages=engine.flows.menus.languages)
    sign_in = build_chat_sign_in(settings, parts["deps"], metrics) if settings.rasa_chat_sign_in else None
    guests = GuestBudget(parts["deps"].throttle, parts["security"], per_minute=settings.rasa_guests_per_minute,
                         admitted_seconds=settings.rasa_session_idle_seconds, longest_seconds=settings.web_max_seconds,
                         counted=lambda outcome: metrics.chat_guests.labels(outcome).inc())
    app = create_action_app(build_executor(engine, channel, sign_in, guests, build_answer_ledger(settings),
                                           build_durable_answers(settings, parts["db"])),
                            settings.rasa_action_token)
    app.ctx.parts = parts     # the store, database and back-end clients (readiness checks, tests)
    app.ctx.metrics = metrics
    if settings.metrics_port is None and not shared_metrics():
        # Alone, as the engine's server: on the public port unless METRICS_PORT moves them to an internal one.
        async def metrics_endpoint(request: Request) -> HTTPResponse:
            return response.raw(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)

        app.add_route(metrics_endpoint, "/metrics", methods=["GET"])
    return app


def _kept_token(path: str = os.path.join("var", "rasa_action_token")) -> str:
    """The action token kept in ``var/`` (made once, mode 0600), for a run that sets none: the Rasa
    server's endpoints.yml must say the same one (``token:`` under ``action_endpoint``)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
        print(f"RASA_ACTION_TOKEN not set: generated one into {path}", file=sys.stderr, flush=True)
    with open(path) as kept:
        return kept.read().strip()


def serve_actions() -> int:
    """``python -m app actions``: the action server in this process, until Ctrl-C or SIGTERM."""
    settings = Settings.from_env_or_refuse()
    if settings.rasa_actions_port is None:
        print("RASA_ACTIONS_PORT=off: the action server is not to be started", file=sys.stderr)
        return 2
    if not settings.rasa_action_token:
        settings = replace(settings, rasa_action_token=_kept_token())
    configure_logging(settings.log_level, secrets=[settings.rasa_action_token, settings.rasa_identity_secret,
                                                   settings.backoffice_api_key or ""])
    refuse_shared_sessions_without_secret_key(settings)
    refuse_menus_with_errors(settings.menus_path)
    app = build_action_app(settings)
    log.info("rasa action server: POST http://%s:%s/webhook", settings.rasa_actions_host, settings.rasa_actions_port)
    stop_metrics = None
    if shared_metrics():
        log.info("metrics: written to PROMETHEUS_MULTIPROC_DIR, summed on the engine's /metrics")
    elif settings.metrics_port is not None:
        stop_metrics = serve_metrics("127.0.0.1", settings.metrics_port, app.ctx.metrics.registry)
        log.info("metrics: http://127.0.0.1:%s/metrics (internal port, METRICS_PORT)", settings.metrics_port)
    else:
        log.info("metrics: http://%s:%s/metrics", settings.rasa_actions_host, settings.rasa_actions_port)
    try:
        app.run(host=settings.rasa_actions_host, port=settings.rasa_actions_port, single_process=True,
                access_log=False, motd=False)
    finally:
        if stop_metrics is not None:
            stop_metrics()
    return 0
