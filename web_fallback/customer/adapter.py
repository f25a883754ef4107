"""The customers' web fallback at ``/web/``: the same dialogs as USSD and SMS, as web pages.

One more ``ChannelAdapter``. A visitor signs in with the phone number and a one-time code sent by
SMS (``sign_in``), then each engine screen is a page: its options as buttons, a free answer as a
form field (a PIN as a password field, never filled back in), Back/Home and paging as buttons. The
engine session is keyed to the signed-in number (``web:+221...``) and belongs to it; the page asks
the engine nothing a hop would not (a reload shows the session's last answer, kept by the engine).

Every POST carries the visit's CSRF token; forms post, then redirect to the page (a reload never
sends a PIN twice; a double-clicked button is the same hop, answered once). Pages are served with a
strict CSP (no script at all), no framing, and ``no-store``. Anything the adapter cannot read gets a
short HTML error page in the visitor's language with the right status, never a stack trace.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from flask import Blueprint, Response, g, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from channels.adapter import BadRequest, ChannelAdapter, KeyedBySender
from channels.capabilities import WEB
from channels.msisdn import in_region, to_e164
from engine import (
    ChannelCapabilities,
    Engine,
    LoggingSecurityAudit,
    Reply,
    SecurityAudit,
    SecurityEvent,
    Turn,
)
from engine.masking import mask

from .sign_in import SignIn
from .texts import text
from .view import page_text, view_of
from .visit import COOKIE, Visit, VisitCookie

__all__ = ["CAPABILITIES", "WebAdapter"]

log = logging.getLogger("web_fallback.customer")

# A page holds far more than a handset screen; a long list (twelve bills) still comes in pages.
CAPABILITIES: Final = WEB  # channels.capabilities
CHANNEL: Final = WEB.name
MAX_ANSWER_CHARS: Final = 200
# When the budget of sign-in codes is spent: its shortest window (a minute).
CODES_BUSY_RETRY_SECONDS: Final = 60
_HOP = re.compile(r"^[A-Za-z0-9_\-]{16,64}$")
_CODE = re.compile(r"^[0-9]{6}$")
_ERRORS: Final = {400: "bad_request", 403: "csrf", 404: "not_found", 405: "method", 413: "too_large"}
# A page that is not there, or a failure of ours, is not a request refused: its own heading.
_HEADINGS: Final = {"not_found": "not_found_title", "server": "server_title"}
_CSP: Final = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
               "frame-ancestors 'none'; base-uri 'none'")


def _clean(value: str) -> str:
    """A typed answer on one line: control characters out, spaces squeezed."""
    return " ".join("".join(c if unicodedata.category(c)[0] != "C" else " " for c in value).split())


@dataclass(frozen=True)
class WebAdapter(KeyedBySender, ChannelAdapter):
    """``sign_in`` checks numbers and codes; ``secret`` signs the visit cookie (Flask's secret key)."""

    sign_in: SignIn
    secret: str | bytes
    idle_seconds: int = 900
    max_seconds: int = 8 * 3600
    secure_cookie: bool = False
    default_region: str = "SN"
    client_address: Callable[[str | None, str | None], str] = lambda peer, _forwarded: peer or ""
    security: SecurityAudit = field(default_factory=LoggingSecurityAudit)
    channel: str = CHANNEL
    prefix: str = "/web"
    # The engine the blueprint was built with, for pages answered outside its views (a 404).
    _bound: dict[str, Engine] = field(default_factory=dict, repr=False, compare=False)

    # ---------------------------------------------------------------- contract
    @property
    def capabilities(self) -> ChannelCapabilities:
        return CAPABILITIES

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def parse(self, form: Mapping[str, str]) -> Turn:
        """``form``: the page's fields plus ``msisdn``, the signed-in number the blueprint vouches for."""
        msisdn = form.get("msisdn") or ""
        hop = form.get("hop") or ""
        if not _HOP.match(hop):
            raise BadRequest("hop missing or malformed")
        raw = form.get("choice") or form.get("answer")
        if raw is None:
            raise BadRequest("no answer")
        if len(raw) > MAX_ANSWER_CHARS:
            raise BadRequest(f"answer longer than {MAX_ANSWER_CHARS} characters")
        return Turn(channel=CHANNEL, address=msisdn, customer=msisdn,
                    session_key=self.session_policy.key(CHANNEL, address=msisdn), input=_clean(raw),
                    hop_id=hop, entry="*", language_hint=form.get("lang") or None)

    def render(self, reply: Reply) -> str:
        """The reply as a whole HTML page (the visit of the current request supplies the token)."""
        engine = self._engine()
        assert engine is not None, "render() runs inside the blueprint's views"
        language = reply.screen.language if reply.screen else self._language(g.web_visit)
        page = view_of(reply, engine.flows.menus, engine.system_text(language, "more"),
                       engine.system_text(language, "previous"))
        return self._page("screen.html", language, view=page, hop=secrets.token_urlsafe(18),
                          number=mask(g.web_visit.msisdn))

    def preview(self, reply: Reply) -> str:
        """The page as text, outside any visit (the flow simulator's view): ``render`` needs the visit's token."""
        engine = self._engine()
        assert engine is not None, "preview() runs once the blueprint is bound"
        language = reply.screen.language if reply.screen else engine.flows.menus.default_language
        page = view_of(reply, engine.flows.menus, engine.system_text(language, "more"),
                       engine.system_text(language, "previous"))
        return page_text(page, lambda key, **values: text(language, key, **values))

    def error_response(self, status: int = 500, headers: Mapping[str, str] | None = None) -> Response:
        visit = self._cookie().load(request.cookies.get(COOKIE))
        language = self._language(visit)
        key = _ERRORS.get(status, "bad_request" if status < 500 else "server")
        heading = text(language, _HEADINGS[key]) if key in _HEADINGS else None
        body = self._page("error.html", language, message=text(language, key), visit=visit, heading=heading)
        response = Response(body, status=status, mimetype="text/html", headers=dict(headers or {}))
        return response

    # ---------------------------------------------------------------- pages
    def _cookie(self) -> VisitCookie:
        return VisitCookie(self.secret, self.idle_seconds, self.max_seconds, self.secure_cookie)

    def _engine(self) -> Engine | None:
        return self._bound.get("engine")

    def _language(self, visit: Visit) -> str:
        engine = self._engine()
        languages = engine.flows.menus.languages if engine else ("fr", "en")
        if visit.lang in languages:
            return visit.lang
        best = request.accept_languages.best_match(languages)
        return best or (engine.flows.menus.default_language if engine else "fr")

    def _page(self, template: str, language: str, **context: object) -> str:
        engine = self._engine()
        brand = engine.flows.menus.brand if engine else None
        names = {"brand": brand.name if brand else "ElecNet", "help_line": brand.help_line if brand else ""}
        found = context.pop("visit", None) or g.get("web_visit")
        visit = found if isinstance(found, Visit) else Visit()

        def t(key: str, **values: str) -> str:
            return text(language, key, **{**names, **values})

        other = next((lang for lang in ("fr", "en") if lang != language), "fr")
        return render_template(f"web_customer/{template}", t=t, language=language, csrf=visit.csrf,
                               other_language=other, brand=names["brand"], **context)

    # ---------------------------------------------------------------- endpoints
    def blueprint(self, engine: Engine) -> Blueprint:
        bp = Blueprint("web_customer", __name__, url_prefix=self.prefix, template_folder="templates",
                       static_folder="static", static_url_path="/static")
        cookie = self._cookie()
        adapter = self
        self._bound["engine"] = engine

        @bp.before_request
        def _load_visit() -> BaseResponse | None:
            visit = cookie.load(request.cookies.get(COOKIE))
            if visit.signed_in and not self._still_open(visit):
                # Closed on the server: signed out elsewhere, a newer sign-in, or idle in the store.
                visit = Visit(lang=visit.lang, notice="signed_out")
            g.web_visit = visit
            if request.method == "POST" and request.endpoint != "web_customer.static":
                sent = request.form.get("csrf", "")
                if not sent or not secrets.compare_digest(sent, visit.csrf):
                    log.info("web: refused a POST without the visit's CSRF token path=%s", request.path)
                    self.security.record(SecurityEvent("csrf_refused", CHANNEL, visit.msisdn or None,
                                                       detail=request.path[:60]))
                    return self._with_cookie(self.error_response(403), visit)
            return None

        @bp.after_app_request
        def _headers(response: Response) -> Response:
            if adapter.owns(request.path):
                response.headers["Content-Security-Policy"] = _CSP
                response.headers["X-Frame-Options"] = "DENY"
                response.headers["X-Content-Type-Options"] = "nosniff"
                response.headers["Referrer-Policy"] = "no-referrer"
                if adapter.secure_cookie:
                    response.headers["Strict-Transport-Security"] = "max-age=31536000"
                if not request.path.startswith(f"{adapter.prefix}/static/"):
                    response.headers["Cache-Control"] = "no-store"
            return response

        @bp.get("/")
        def home() -> BaseResponse:
            visit: Visit = g.web_visit
            chosen = request.args.get("lang", "")
            if chosen in engine.flows.menus.languages:
                visit.lang = chosen
            if not visit.signed_in:
                if visit.pending:
                    return self._respond(self._code_page(visit), visit)
                notice = visit.notice or ("signed_out" if request.args.get("out") else None)
                return self._respond(self._sign_in_page(visit, notice=notice), visit)
            reply = self._current(engine, visit)
            return self._respond(self.render(reply), visit)

        @bp.post("/")
        def answer() -> BaseResponse:
            visit: Visit = g.web_visit
            if not visit.signed_in:
                return self._after_post(visit)
            fields = {name: request.form.get(name, "") for name in ("hop", "lang")}
            for name in ("choice", "answer"):
                if name in request.form:
                    fields[name] = request.form[name]
            try:
                turn = self.parse({**fields, "msisdn": visit.msisdn or ""})
            except BadRequest as exc:
                log.info("web: rejected an answer user=%s: %s", mask(visit.msisdn), exc)
                return self._with_cookie(self.error_response(400), visit)
            reply = engine.handle(turn)
            if reply.screen is not None:
                visit.lang = reply.screen.language
            log.info("web hop user=%s node=%s end=%s", mask(visit.msisdn),
                     reply.screen.node if reply.screen else "-", reply.end)
            return self._after_post(visit)

        @bp.post("/code")
        def ask_code() -> BaseResponse:
            visit: Visit = g.web_visit
            language = self._language(visit)
            raw = request.form.get("phone")
            if raw is None and visit.pending:     # "send me a new code" on the code page
                msisdn: str | None = visit.pending
            else:
                raw = raw or ""
                msisdn = to_e164(raw, self.default_region) if len(raw) <= 32 else None
            if msisdn is None:
                return self._respond(self._sign_in_page(visit, error="bad_number", status=422), visit)
            if not in_region(msisdn, self.default_region):
                # A code abroad is an international SMS the utility pays for, and what SMS-pumping fraud feeds
                # on: codes go to the service's own country (DEFAULT_REGION), where its customers' numbers are.
                return self._respond(self._sign_in_page(visit, error="foreign_number", status=422), visit)
            address = self.client_address(request.remote_addr, request.headers.get("X-Forwarded-For"))
            try:
                outcome = self.sign_in.request_code(msisdn, address, language)
            except Exception as exc:   # noqa: BLE001 - the store or the outbox is down: say so, keep nothing
                log.error("web: code not sent user=%s: %s", mask(msisdn), type(exc).__name__)
                return self._respond(self._sign_in_page(visit, error="unavailable", status=503), visit)
            if outcome == "throttled":
                return self._respond(self._sign_in_page(visit, error="throttled", status=429), visit)
            if outcome == "busy":
                # The codes' budget for everyone not signed in is spent (SMS pumping, or a rush): no code, and
                # no fault of this visitor's: 503, come back in a minute.
                busy = self._respond(self._sign_in_page(visit, error="codes_busy", status=503), visit)
                busy.headers["Retry-After"] = str(CODES_BUSY_RETRY_SECONDS)
                return busy
            visit.pending = msisdn
            return self._after_post(visit)

        @bp.post("/sign-in")
        def check_code() -> BaseResponse:
            visit: Visit = g.web_visit
            if not visit.pending:
                return self._after_post(visit)
            code = request.form.get("code", "").strip().replace(" ", "")
            if not _CODE.match(code):
                return self._respond(self._code_page(visit, error="bad_code", status=422), visit)
            address = self.client_address(request.remote_addr, request.headers.get("X-Forwarded-For"))
            try:
                outcome = self.sign_in.check_code(visit.pending, code, address)
            except Exception as exc:  # noqa: BLE001 - a failed sign-in step is answered, never a 500
                log.error("web: code not checked user=%s: %s", mask(visit.pending), type(exc).__name__)
                return self._respond(self._code_page(visit, error="unavailable", status=503), visit)
            if outcome != "ok":
                errors = {"wrong": ("wrong_code", 422), "expired": ("expired_code", 422),
                          "throttled": ("throttled", 429)}
                key, status = errors[outcome]
                return self._respond(self._code_page(visit, error=key, status=status), visit)
            msisdn = visit.pending
            visit.sign_out()                      # a fresh CSRF token for the signed-in visit
            visit.msisdn, visit.visit = msisdn, secrets.token_urlsafe(24)
            visit.since = cookie.clock()
            self.sign_in.store.open_visit(msisdn, visit.visit, self.idle_seconds)
            log.info("web: signed in user=%s", mask(msisdn))
            return self._after_post(visit)

        @bp.post("/other-number")
        def other_number() -> BaseResponse:
            visit: Visit = g.web_visit
            visit.pending = None
            return self._after_post(visit)

        @bp.post("/sign-out")
        def sign_out() -> BaseResponse:
            visit: Visit = g.web_visit
            if visit.signed_in and visit.msisdn and visit.visit:
                self.sign_in.store.close_visit(visit.msisdn, visit.visit)
                self.security.record(SecurityEvent("sign_out", CHANNEL, visit.msisdn))
                log.info("web: signed out user=%s", mask(visit.msisdn))
            visit.sign_out()
            response = self._with_cookie(redirect(f"{self.prefix}/?out=1", code=303), visit)
            return response

        return bp

    # ---------------------------------------------------------------- helpers
    def _still_open(self, visit: Visit) -> bool:
        try:
            return self.sign_in.store.touch_visit(visit.msisdn or "", visit.visit or "", self.idle_seconds)
        except Exception as exc:  # noqa: BLE001 - an unreadable visit is a signed-out visit
            log.error("web: visit not checked user=%s: %s", mask(visit.msisdn), type(exc).__name__)
            return False

    def _current(self, engine: Engine, visit: Visit) -> Reply:
        """The session's last answer (a reload, the page after a POST), or a new session's first screen."""
        msisdn = visit.msisdn or ""
        key = self.session_policy.key(CHANNEL, address=msisdn)
        try:
            last = engine.last_answer(key, msisdn)
        except Exception:  # noqa: BLE001 - no last answer to show: the page starts the menu
            last = None
        if last is not None:
            return last
        return engine.handle(Turn(channel=CHANNEL, address=msisdn, customer=msisdn, session_key=key,
                                  input=None, hop_id=secrets.token_urlsafe(18), entry="*",
                                  language_hint=visit.lang))

    def _sign_in_page(self, visit: Visit, *, error: str | None = None, notice: str | None = None,
                      status: int = 200) -> tuple[str, int]:
        language = self._language(visit)
        return self._page("sign_in.html", language, error=error, notice=notice), status

    def _code_page(self, visit: Visit, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
        language = self._language(visit)
        minutes = str(self.sign_in.rules.code_ttl_seconds // 60)
        return self._page("code.html", language, error=error, number=mask(visit.pending),
                          minutes=minutes), status

    def _respond(self, page: str | tuple[str, int], visit: Visit) -> BaseResponse:
        body, status = page if isinstance(page, tuple) else (page, 200)
        return self._with_cookie(Response(body, status=status, mimetype="text/html"), visit)

    def _after_post(self, visit: Visit) -> BaseResponse:
        # Post/redirect/get: the page is a GET, so a reload never sends the form again.
        return self._with_cookie(redirect(f"{self.prefix}/", code=303), visit)

    def _with_cookie(self, response: BaseResponse, visit: Visit) -> BaseResponse:
        self._cookie().save(response, visit)
        return response
