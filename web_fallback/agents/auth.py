"""Agents' sign-in and the guards of every agent page.

Sign-in is OpenID Connect through Authlib's Flask client (issuer, client id and secret from the
settings); the roles come from a claim of the ID token (``roles`` by default) and/or a configured
list (``AGENT_ROLES``). Without an issuer, ``make run`` may offer a clearly marked local sign-in
(``AGENTS_DEV_SIGNIN=1``). The signed-in agent lives in Flask's signed, HttpOnly, SameSite=Lax
session cookie; it lapses after ``idle_seconds`` without a request. Every POST carries the
session's CSRF token; every answer carries security headers and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, Response, abort, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from .ports import ROLES, AgentAudit, AgentIdentity, AuditEntry

__all__ = ["AuthConfig", "auth_blueprint", "csrf_token", "current_agent", "parse_role_list", "requires"]

log = logging.getLogger("agents")

F = TypeVar("F", bound=Callable[..., Any])

_AGENT = "agent"
_CSRF = "agent_csrf"
_NEXT = "agent_next"
# Paths guarded here (the factory asks ``owns`` to answer their errors as HTML pages).
PREFIXES = ("/console/", "/simulator/", "/agents/")
SECURITY_HEADERS: Mapping[str, str] = {
    # No script at all on these pages; styles only from our own static file.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def parse_role_list(value: str) -> dict[str, tuple[str, ...]]:
    """``"alice@example.com=supervisor,bob=agent+designer"`` -> ``{"alice@example.com": ("supervisor",), ...}``:
    roles granted by configuration, by subject or e-mail; unknown role names are ignored."""
    found: dict[str, tuple[str, ...]] = {}
    for item in value.split(","):
        who, _, roles = item.strip().partition("=")
        granted = tuple(r for r in (p.strip() for p in roles.split("+")) if r in ROLES)
        if who.strip() and granted:
            found[who.strip().lower()] = granted
    return found


@dataclass(frozen=True)
class AuthConfig:
    issuer: str = ""                  # OpenID Connect issuer URL; empty: no OIDC sign-in
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    roles_claim: str = "roles"
    role_list: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    dev_signin: bool = False          # the marked local sign-in, only when no issuer is configured
    idle_seconds: int = 900
    public_base_url: str = "http://127.0.0.1:8000"

    @property
    def dev_mode(self) -> bool:
        return self.dev_signin and not self.issuer


def current_agent() -> AgentIdentity | None:
    raw = session.get(_AGENT)
    if not isinstance(raw, dict):
        return None
    return AgentIdentity(str(raw.get("sub", "")), str(raw.get("name", "")), tuple(raw.get("roles", ())),
                         str(raw.get("via", "")))


def csrf_token() -> str:
    token = session.get(_CSRF)
    if not isinstance(token, str):
        token = session[_CSRF] = secrets.token_urlsafe(24)
    return token


def requires(*roles: str) -> Callable[[F], F]:
    """The view needs a signed-in agent holding one of ``roles`` (403 page otherwise)."""

    def wrap(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            agent = current_agent()
            if agent is None:
                if request.method == "GET":
                    session[_NEXT] = request.path
                return redirect(url_for("agents_auth.signin"))
            if not agent.may(*roles):
                abort(403, f"Your role ({agent.role}) does not give access to this page.")
            return view(*args, **kwargs)
        return guarded  # type: ignore[return-value]
    return wrap


def _roles_from(claims: Mapping[str, Any], config: AuthConfig) -> tuple[str, ...]:
    raw = claims.get(config.roles_claim)
    if isinstance(raw, str):
        claimed = raw.replace(",", " ").split()
    elif isinstance(raw, list | tuple):
        claimed = [str(r) for r in raw]
    else:
        claimed = []
    for key in (str(claims.get("sub", "")), str(claims.get("email", ""))):
        claimed.extend(config.role_list.get(key.lower(), ()))
    return tuple(r for r in ROLES if r in claimed)


def install_guards(app: Flask, config: AuthConfig) -> None:
    """Cookie settings, idle timeout, CSRF on every POST and security headers, for the agents' paths."""
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=config.public_base_url.startswith("https://"),
                      PERMANENT_SESSION_LIFETIME=12 * 3600)

    def ours() -> bool:
        return request.path.startswith(PREFIXES)

    @app.before_request
    def _guard() -> Response | None:
        if not ours():
            return None
        raw = session.get(_AGENT)
        if isinstance(raw, dict):
            now = time.time()
            if now - float(raw.get("seen", 0)) > config.idle_seconds:
                session.pop(_AGENT, None)
                session["agent_notice"] = "You were signed out after a while without activity."
            else:
                raw["seen"] = now
                session.modified = True
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            kept = session.get(_CSRF)
            if not isinstance(kept, str) or not hmac.compare_digest(sent.encode(), kept.encode()):
                abort(400, "This form has expired or did not come from this console. Reload the page and try again.")
        return None

    @app.after_request
    def _headers(response: Response) -> ResponseReturnValue:
        if ours():
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response


# An error page's heading in an agent's words; the status code stays in the page's title for IT.
_HEADINGS = {400: "This could not be done", 401: "Please sign in", 403: "Not allowed",
             404: "Page not found", 405: "Not allowed here", 413: "Too much was sent",
             429: "Too many tries: wait a moment", 500: "Something went wrong on our side",
             503: "Not available right now"}


def error_page(exc: HTTPException) -> Response:
    """An agent page's error as a plain HTML page (never a stack trace)."""
    code = exc.code or 500
    body = render_template("agents/error.html", code=code, title=exc.name,
                           heading=_HEADINGS.get(code, exc.name), message=exc.description,
                           agent=current_agent())
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    response = Response(body, status=code, mimetype="text/html", headers=headers)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def auth_blueprint(app: Flask, config: AuthConfig, audit: AgentAudit) -> Blueprint:
    """``/agents/signin``, the OIDC redirect and callback, the dev sign-in, ``/agents/signout``."""
    bp = Blueprint("agents_auth", __name__)
    oauth = OAuth(app)
    if config.issuer:
        oauth.register("agents", client_id=config.client_id, client_secret=config.client_secret,
                       server_metadata_url=f"{config.issuer.rstrip('/')}/.well-known/openid-configuration",
                       client_kwargs={"scope": "openid email profile"})

    def signed_in(agent: AgentIdentity) -> ResponseReturnValue:
        # A fresh session: nothing from before the sign-in survives (no fixation).
        next_path = session.get(_NEXT)
        session.clear()
        session.permanent = True
        now = time.time()
        session[_AGENT] = {"sub": agent.subject, "name": agent.name, "roles": list(agent.roles), "via": agent.via,
                           "seen": now, "since": now}
        csrf_token()
        audit.seen(agent)
        audit.record(AuditEntry(agent.subject, agent.role, "sign_in", detail=f"via {agent.via}"))
        console = agent.may("agent", "supervisor")
        # Back to the page that asked for the sign-in, when this role may see it.
        if isinstance(next_path, str) and (next_path.startswith("/simulator/")
                                           or (console and next_path.startswith("/console/"))):
            return redirect(next_path)
        return redirect(url_for("agents_console.home") if console else url_for("agents_simulator.home"))

    @bp.get("/agents/signin")
    def signin() -> str:
        notice = session.pop("agent_notice", None)
        return render_template("agents/signin.html", oidc=bool(config.issuer), dev=config.dev_mode,
                               roles=ROLES, csrf=csrf_token(), notice=notice, agent=current_agent())

    @bp.get("/agents/oidc/start")
    def oidc_start() -> Any:
        if not config.issuer:
            abort(404, "No identity provider is configured.")
        return oauth.agents.authorize_redirect(f"{config.public_base_url}/agents/oidc/callback")

    @bp.get("/agents/oidc/callback")
    def oidc_callback() -> Any:
        if not config.issuer:
            abort(404, "No identity provider is configured.")
        if "error" in request.args:
            abort(403, "The identity provider did not sign you in.")
        try:
            token = oauth.agents.authorize_access_token()
        except Exception as exc:  # noqa: BLE001 -- a bad state, code or token: a clear page, the reason logged
            # The reason, not the answer: the provider's body may carry codes or tokens.
            log.warning("agent sign-in failed: %s", type(exc).__name__)
            abort(400, "The sign-in could not be completed. Please start again.")
        claims = dict(token.get("userinfo") or {})
        roles = _roles_from(claims, config)
        subject = str(claims.get("sub", ""))
        if not subject:
            abort(400, "The identity provider sent no subject.")
        if not roles:
            audit.record(AuditEntry(subject, "-", "sign_in", outcome="refused", detail="no agent role"))
            abort(403, "You are signed in with your organisation, but no agent role was granted to you.")
        name = str(claims.get("name") or claims.get("email") or subject)
        return signed_in(AgentIdentity(subject, name, roles, "oidc"))

    @bp.post("/agents/dev-signin")
    def dev_signin() -> ResponseReturnValue:
        if not config.dev_mode:
            abort(404, "The local sign-in is only offered in development, without an identity provider.")
        name = " ".join(request.form.get("name", "").split())[:60]
        role = request.form.get("role", "")
        if not name or role not in ROLES:
            abort(400, "Give a name and one of the roles.")
        return signed_in(AgentIdentity(f"dev:{name.lower()}", name, (role,), "dev"))

    @bp.post("/agents/signout")
    def signout() -> ResponseReturnValue:
        agent = current_agent()
        if agent is not None:
            audit.record(AuditEntry(agent.subject, agent.role, "sign_out"))
        session.clear()
        session["agent_notice"] = "You are signed out."
        return redirect(url_for("agents_auth.signin"))

    return bp
