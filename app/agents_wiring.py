"""Mounts the agents' console and simulator (``web_fallback.agents``) on the product's app: the one place
that hands them the concrete records, audit, throttle, the simulator's sandbox engine and the linter.

A payment played in the simulator goes to the demo back office only (``sandbox_backoffice``), with the
sandbox's own callback (``SANDBOX_CALLBACK_PATH``): its result settles the sandbox's ledger, never the live
one, and no customer's receipt is queued where the worker would send it."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from flask import Flask

from channels.adapter import ChannelAdapter
from channels.payment_callback import Applied, CallbackEvent, payment_callback_blueprint
from engine import Engine, MemorySessionStore, RedisSessionStore, SessionStore
from engine.redis_url import redis_from_url
from web_fallback.agents import (
    AuthConfig,
    ConsoleConfig,
    SimChannel,
    SimulatorConfig,
    parse_role_list,
    register_agents,
)

from .settings import Settings
from .storage import migrate
from .storage.agent_console import SqlAgentAudit, SqlCustomerRecords
from .storage.throttle import MemoryThrottle, RedisThrottle

__all__ = ["SANDBOX_CALLBACK_PATH", "mount_agents", "sandbox_backoffice", "sandbox_settings"]

log = logging.getLogger("app")

# Who the demo numbers of the reference back office are (README "Try it").
DEMO_NUMBERS = {
    "+221770000001": "residential, two unpaid bills (fr)",
    "+221770000002": "business, three accounts (en)",
    "+221770000003": "prepaid meter (fr)",
    "+221770009999": "unknown number: offered to link an account (fr)",
}
_CHANNEL_LABELS = {"ussd": "USSD (*123#)", "sms": "SMS keywords", "whatsapp": "WhatsApp", "web": "Web pages"}
_ENTRIES = {"ussd": "*123#", "sms": "*"}
_SHOWS_FIRST = {"web"}   # the web's first page (the menu) comes with the sign-in, no message asked


def _one_per_channel(adapters: Sequence[ChannelAdapter]) -> list[ChannelAdapter]:
    """One adapter per channel name, in the order the names first come: Twilio and Meta both answer as
    ``whatsapp``, and the simulator plays a channel by its name (the last adapter of a name, as before)."""
    chosen: dict[str, ChannelAdapter] = {}
    for adapter in adapters:
        chosen[adapter.channel] = adapter
    return list(chosen.values())


# Where the demo back office reports the simulator's payments: settled in the sandbox's own ledger, never
# on the live ``/payments/callback``, whose ledger (and customers' receipts) they are not part of.
SANDBOX_CALLBACK_PATH = "/payments/simulator/callback"


def _development(settings: Settings) -> bool:
    return settings.agents_dev_signin and not settings.oidc_issuer


def sandbox_backoffice(settings: Settings) -> str | None:
    """Where the simulator's money goes: ``SIMULATOR_BACKOFFICE_URL``, or in development (the local sign-in
    of ``make run``, whose ``BACKOFFICE_URL`` is the reference back office) that one. Otherwise none: in
    production ``BACKOFFICE_URL`` is the utility's real systems, and a simulated payment must not reach them,
    not even when ``SIMULATOR_BACKOFFICE_URL`` names them by mistake."""
    if settings.simulator_backoffice_url:
        if settings.simulator_backoffice_url == settings.backoffice_url and not _development(settings):
            return None
        return settings.simulator_backoffice_url
    return settings.backoffice_url if _development(settings) else None


def _unavailable(settings: Settings) -> str | None:
    """Why the simulator may not play (a simulated payment could reach real systems or records), or None."""
    if settings.simulator_database_url == settings.database_url:
        return "The simulator needs a database of its own: set SIMULATOR_DATABASE_URL apart from DATABASE_URL."
    if sandbox_backoffice(settings) is None:
        return ("The simulator needs a demo back office: set SIMULATOR_BACKOFFICE_URL "
                "(not BACKOFFICE_URL, the utility's real systems).")
    return None


def sandbox_settings(settings: Settings) -> Settings:
    """The simulator's engine settings: the demo back office, its own database, nothing shared in Redis
    but the session store (identity cache and throttles stay in the process)."""
    return replace(settings, redis_url=None, database_url=settings.simulator_database_url,
                   backoffice_url=sandbox_backoffice(settings) or "http://127.0.0.1:9")


class _Sandbox:
    """The sandbox engine and its parts, built on first use (migrating its database), then kept."""

    def __init__(self, settings: Settings, adapters: Sequence[ChannelAdapter]) -> None:
        self._settings, self._adapters = settings, adapters
        self._built: list[tuple[Engine, dict[str, Any]]] = []
        self._guard = threading.Lock()

    def _get(self) -> tuple[Engine, dict[str, Any]]:
        from .factory import build_engine  # the factory imports this module

        with self._guard:
            if not self._built:
                sandbox = sandbox_settings(self._settings)
                migrate(sandbox.database_url)
                # Its own key prefix: a customer's redial never finds (or resumes) a simulated session.
                store: SessionStore = (RedisSessionStore.from_url(self._settings.redis_url, prefix="sim:")
                                       if self._settings.redis_url else MemorySessionStore())
                made, parts = build_engine(sandbox, store, callback_path=SANDBOX_CALLBACK_PATH)
                for adapter in self._adapters:
                    policy = adapter.session_policy
                    made.declare(adapter.capabilities, policy.idle_seconds, policy.key_ends_with_session)
                self._built.append((made, parts))
            return self._built[0]

    def engine(self) -> Engine:
        return self._get()[0]

    def settle(self, event: CallbackEvent) -> Applied:
        """The demo back office's word on a simulated payment, applied to the sandbox's ledger only."""
        from .factory import settler

        return settler(self._get()[1]["deps"])(event)


def _lint_report(settings: Settings, adapters: Sequence[ChannelAdapter]) -> Callable[[], list[dict[str, str]]]:
    kept: list[list[dict[str, str]]] = []

    def report() -> list[dict[str, str]]:
        if not kept:
            from dialogs.registry import guest_steps, known_steps
            from engine.preview import screen_problems
            from engine.validators import accepts
            from menus import load_menus
            from menus.lint import lint
            from menus.problems import MenuError

            try:
                problems = lint(load_menus(settings.menus_path), steps=known_steps(), screen_check=screen_problems,
                                channels=[a.capabilities for a in adapters], guest_steps=guest_steps(),
                                accepts=accepts)
            except MenuError as exc:
                problems = exc.problems
            kept.append([{"severity": p.severity, "where": f"{p.file}:{p.line}", "message": p.message,
                          "hint": p.hint} for p in problems])
        return kept[0]

    return report


def mount_agents(app: Flask, settings: Settings, parts: dict[str, Any], adapters: Sequence[ChannelAdapter]) -> None:
    if not app.secret_key:
        # Signs the agents' cookie; without SECRET_KEY it is random (sign-ins do not survive a restart).
        app.secret_key = settings.secret_key or secrets.token_hex(32)
    if settings.agents_dev_signin and not settings.oidc_issuer:
        log.warning("AGENTS_DEV_SIGNIN=1 and no OIDC_ISSUER: /agents/signin offers a local development sign-in "
                    "to anyone who reaches this server. Never in production.")
    client = redis_from_url(settings.redis_url, socket_timeout=1.0) if settings.redis_url else None
    throttle = RedisThrottle(client, prefix="agents:") if client is not None else MemoryThrottle()
    sessions = parts["db"]
    deps = parts["deps"]
    sandbox = _Sandbox(settings, adapters)
    unavailable = _unavailable(settings)
    if unavailable is None:
        app.register_blueprint(payment_callback_blueprint(sandbox.settle, settings.payment_callback_secret,
                                                          parts["security"], path=SANDBOX_CALLBACK_PATH,
                                                          name="simulator_payment_callback"))
    register_agents(
        app,
        auth=AuthConfig(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id,
                        client_secret=settings.oidc_client_secret, roles_claim=settings.oidc_roles_claim,
                        role_list=parse_role_list(settings.agent_roles), dev_signin=settings.agents_dev_signin,
                        idle_seconds=settings.agent_idle_seconds, public_base_url=settings.public_base_url),
        audit=SqlAgentAudit(sessions, settings.secret_key),
        records=SqlCustomerRecords(sessions, parts["security"], deps.identity, deps.billing, settings.clock,
                                   timedelta(minutes=settings.whatsapp_window_minutes), deps),
        hit=throttle.hit,
        console=ConsoleConfig(default_region=settings.default_region, lookup_limit=settings.agent_lookup_limit,
                              lookup_window_seconds=settings.agent_lookup_window_seconds,
                              payment_action_limit=settings.agent_payment_action_limit),
        sandbox=sandbox.engine,
        channels=[SimChannel(a.channel, _CHANNEL_LABELS.get(a.channel, a.channel), a.capabilities, a.preview,
                             _ENTRIES.get(a.channel, "*"), opens_with_text=a.session_policy.per == "user",
                             writes_first=a.channel not in _SHOWS_FIRST)
                  for a in _one_per_channel(adapters)],
        simulator=SimulatorConfig(numbers=[(n, DEMO_NUMBERS.get(n, "demo customer"))
                                           for n in settings.simulator_numbers],
                                  unavailable=unavailable),
        lint_report=_lint_report(settings, adapters),
    )
