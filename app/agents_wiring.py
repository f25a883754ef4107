"""Mounts the agents' console and simulator (``web_fallback.agents``) on the product's app: the one place
that hands them the concrete records, audit, throttle, the simulator's sandbox engine and the linter."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import redis
from flask import Flask

from channels.adapter import ChannelAdapter
from engine import Engine, MemorySessionStore, RedisSessionStore, SessionStore
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

__all__ = ["mount_agents", "sandbox_backoffice", "sandbox_settings"]

log = logging.getLogger("app")

# Who the demo numbers of the reference back office are (README "Try it").
DEMO_NUMBERS = {
    "+221770000001": "residential, two unpaid bills (fr)",
    "+221770000002": "business, three accounts (en)",
    "+221770000003": "prepaid meter (fr)",
    "+221770009999": "unknown number: offered to link an account (fr)",
}
_CHANNEL_LABELS = {"ussd": "USSD (*123#)", "sms": "SMS keywords"}
_ENTRIES = {"ussd": "*123#", "sms": "*"}


def sandbox_backoffice(settings: Settings) -> str | None:
    """Where the simulator's money goes: ``SIMULATOR_BACKOFFICE_URL``, or in development (the local sign-in
    of ``make run``, whose ``BACKOFFICE_URL`` is the reference back office) that one. Otherwise none: in
    production ``BACKOFFICE_URL`` is the utility's real systems, and a simulated payment must not reach them."""
    if settings.simulator_backoffice_url:
        return settings.simulator_backoffice_url
    return settings.backoffice_url if settings.agents_dev_signin and not settings.oidc_issuer else None


def sandbox_settings(settings: Settings) -> Settings:
    """The simulator's engine settings: the demo back office, its own database, nothing shared in Redis
    but the session store (identity cache and throttles stay in the process)."""
    return replace(settings, redis_url=None, database_url=settings.simulator_database_url,
                   backoffice_url=sandbox_backoffice(settings) or "http://127.0.0.1:9")


def _sandbox(settings: Settings, adapters: Sequence[ChannelAdapter]) -> Callable[[], Engine]:
    """The sandbox engine, built on first use (migrating its database), then kept."""
    from .factory import build_engine  # the factory imports this module

    built: list[Engine] = []
    guard = threading.Lock()

    def engine() -> Engine:
        with guard:
            if not built:
                sandbox = sandbox_settings(settings)
                migrate(sandbox.database_url)
                # Its own key prefix: a customer's redial never finds (or resumes) a simulated session.
                store: SessionStore = (RedisSessionStore.from_url(settings.redis_url, prefix="sim:")
                                       if settings.redis_url else MemorySessionStore())
                made, _ = build_engine(sandbox, store)
                for adapter in adapters:
                    policy = adapter.session_policy
                    made.declare(adapter.capabilities, policy.idle_seconds, policy.key_ends_with_session)
                built.append(made)
            return built[0]

    return engine


def _lint_report(settings: Settings, adapters: Sequence[ChannelAdapter]) -> Callable[[], list[dict[str, str]]]:
    kept: list[list[dict[str, str]]] = []

    def report() -> list[dict[str, str]]:
        if not kept:
            from dialogs.registry import known_steps
            from engine.preview import screen_problems
            from menus import load_menus
            from menus.lint import lint
            from menus.problems import MenuError

            try:
                problems = lint(load_menus(settings.menus_path), steps=known_steps(), screen_check=screen_problems,
                                channels=[a.capabilities for a in adapters])
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
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=1.0) if settings.redis_url else None
    throttle = RedisThrottle(client, prefix="agents:") if client is not None else MemoryThrottle()
    sessions = parts["db"]
    deps = parts["deps"]
    register_agents(
        app,
        auth=AuthConfig(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id,
                        client_secret=settings.oidc_client_secret, roles_claim=settings.oidc_roles_claim,
                        role_list=parse_role_list(settings.agent_roles), dev_signin=settings.agents_dev_signin,
                        idle_seconds=settings.agent_idle_seconds, public_base_url=settings.public_base_url),
        audit=SqlAgentAudit(sessions, settings.secret_key),
        records=SqlCustomerRecords(sessions, parts["security"], deps.identity, deps.billing),
        hit=throttle.hit,
        console=ConsoleConfig(default_region=settings.default_region, lookup_limit=settings.agent_lookup_limit,
                              lookup_window_seconds=settings.agent_lookup_window_seconds),
        sandbox=_sandbox(settings, adapters),
        channels=[SimChannel(a.channel, _CHANNEL_LABELS.get(a.channel, a.channel), a.capabilities, a.render,
                             _ENTRIES.get(a.channel, "*"), opens_with_text=a.session_policy.per == "user")
                  for a in adapters],
        simulator=SimulatorConfig(numbers=[(n, DEMO_NUMBERS.get(n, "demo customer"))
                                           for n in settings.simulator_numbers],
                                  unavailable=None if sandbox_backoffice(settings) else (
                                      "The simulator needs a demo back office: set SIMULATOR_BACKOFFICE_URL.")),
        lint_report=_lint_report(settings, adapters),
    )
