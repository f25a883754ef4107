"""The USSD callback's plain hops served in front of Flask: the same answer for less CPU per hop.

Flask's request machinery (request and app contexts, URL matching, form parser, response object,
hooks) costs about a fifth of a dial's CPU in-process. ``UssdFastPath`` wraps the app's WSGI
callable and answers ``POST /ussd/africastalking`` itself when the request is the gateway's
ordinary one: a urlencoded ASCII body within the size limit, no query string, and the gateway's
credentials accepted by the same ``GatewayGuard``. It then runs exactly what the Flask view runs
(``channels.ussd.answer``: parse, engine, the masked log line, render). Anything else (a refused
caller, a query string, another content type, a body too large or not ASCII, a field the adapter
refuses, an unexpected error) goes to the Flask app with the body it sent, so every refusal and
every error answer keeps its one place (``channels.ussd``, the factory's error handlers).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import parse_qsl

from engine import Engine

from .adapter import BadRequest
from .gateway_guard import GatewayGuard
from .ussd import UssdAdapter, answer, is_ascii_form

__all__ = ["UssdFastPath"]

log = logging.getLogger("channels.ussd")

PATH: Final = "/ussd/africastalking"
_FORM: Final = "application/x-www-form-urlencoded"
_HEADERS: Final = [("Content-Type", "text/plain; charset=utf-8")]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Headers:
    """The two request headers the guard reads, from the WSGI environ."""

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)


class UssdFastPath:
    """WSGI middleware: plain USSD hops answered directly, everything else by ``app``."""

    def __init__(self, app: WsgiApp, engine: Engine, adapter: UssdAdapter, guard: GatewayGuard,
                 max_body_bytes: int, observe: Callable[[float], None] | None = None) -> None:
        self.app, self.engine, self.adapter, self.guard = app, engine, adapter, guard
        self.max_body_bytes = max_body_bytes
        self.observe = observe

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST"
                or environ.get("QUERY_STRING") or environ.get("CONTENT_TYPE") != _FORM):
            return self.app(environ, start_response)
        started = time.perf_counter()
        length = environ.get("CONTENT_LENGTH") or ""
        if not length.isdigit() or int(length) > self.max_body_bytes:
            return self.app(environ, start_response)
        if self.guard.check(_Headers(environ), {}, environ.get("REMOTE_ADDR")) is not None:
            return self.app(environ, start_response)   # refused: logged, audited and answered there
        body = environ["wsgi.input"].read(int(length))
        # Parsing, the hop and the answer in one turn of the engine's (the hop gives it back for its back-end
        # calls): the other threads' hops do not take the GIL from this one between its parts.
        with self.engine.in_turn():
            try:
                text = self._answer(body)
            except Exception:  # the Flask app answers it, with its error handlers
                log.debug("USSD hop handed to the app", exc_info=True)
                text = None
            if text is not None:
                out = text.encode()
                start_response("200 OK", [*_HEADERS, ("Content-Length", str(len(out)))])
                if self.observe is not None:
                    self.observe(time.perf_counter() - started)
                return [out]
        return self.app({**environ, "wsgi.input": io.BytesIO(body)}, start_response)

    def _answer(self, body: bytes) -> str | None:
        """The hop's answer, or None when the body is not the plain case (the app then reads it)."""
        if not is_ascii_form(body):
            return None
        form: dict[str, str] = {}
        for name, value in parse_qsl(body.decode("ascii"), keep_blank_values=True):
            form.setdefault(name, value)   # the first of repeated fields, as werkzeug's form gives
        try:
            turn = self.adapter.parse(form)
        except BadRequest:
            return None
        return answer(self.engine, self.adapter, turn)

