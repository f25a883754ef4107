"""The agents' side of the web: sign-in (OpenID Connect), the customer look-up console ``/console/`` and
the flow simulator ``/simulator/``. ``register_agents`` mounts them on the product's Flask app; the app
factory hands in the concrete records, audit, throttle and sandbox engine through the ports."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from engine import Engine

from .auth import PREFIXES, AuthConfig, auth_blueprint, error_page, install_guards, parse_role_list
from .console import ConsoleConfig, console_blueprint
from .ports import AgentAudit, AgentIdentity, AuditEntry, CustomerFile, CustomerRecords
from .simulator import SimChannel, SimulatorConfig, measure_screen, simulator_blueprint

__all__ = [
    "AgentAudit",
    "AgentIdentity",
    "AuditEntry",
    "AuthConfig",
    "ConsoleConfig",
    "CustomerFile",
    "CustomerRecords",
    "SimChannel",
    "SimulatorConfig",
    "error_page",
    "measure_screen",
    "owns",
    "parse_role_list",
    "register_agents",
]


def owns(path: str) -> bool:
    """Whether ``path`` is an agents' page (its errors are answered as HTML pages)."""
    return path.startswith(PREFIXES)


def register_agents(app: Flask, *, auth: AuthConfig, audit: AgentAudit, records: CustomerRecords,
                    hit: Callable[[str, int, int], bool], console: ConsoleConfig,
                    sandbox: Callable[[], Engine], channels: Sequence[SimChannel], simulator: SimulatorConfig,
                    lint_report: Callable[[], list[dict[str, str]]]) -> None:
    """Mount sign-in, console and simulator on ``app`` (whose ``secret_key`` signs the agents' cookie)."""
    install_guards(app, auth)
    app.register_blueprint(auth_blueprint(app, auth, audit))
    app.register_blueprint(console_blueprint(records, audit, hit, console))
    app.register_blueprint(simulator_blueprint(sandbox, channels, simulator, audit, lint_report))
    # Templates and the style sheet of these pages.
    from flask import Blueprint

    app.register_blueprint(Blueprint("agents_static", __name__, template_folder="templates",
                                     static_folder="static", static_url_path="/agents/static"))


def html_error(exc: HTTPException) -> Response:
    return error_page(exc)
