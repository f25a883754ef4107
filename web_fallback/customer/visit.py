"""The web visit: what the browser's signed cookie says about who is there.

The cookie is signed with the app's secret (itsdangerous, as Flask's own sessions), HttpOnly,
SameSite=Lax, Secure when the site is served over HTTPS, and scoped to ``/web``, so it is apart
from the agents' pages. It carries the CSRF token of the visit, the chosen language, the number a
code was asked for, and, once signed in, the number and a random visit id the server must still
hold open (``SignInStore``): sign-out, idle expiry or a newer sign-in end it for good.

The signature's timestamp is renewed on every answer: a cookie older than ``idle_seconds`` is read
as signed out (``notice`` says why to the page); a sign-in older than ``max_seconds`` likewise.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.wrappers import Response

__all__ = ["COOKIE", "Visit", "VisitCookie"]

COOKIE = "web_visit"
_SALT = "web_fallback.customer.visit"
_MAX_COOKIE_CHARS = 2048


@dataclass(slots=True)
class Visit:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lang: str | None = None
    pending: str | None = None      # the number a code was sent to, waiting for it
    msisdn: str | None = None       # signed in as
    visit: str | None = None        # the server-side id of the signed-in visit
    since: float = 0.0              # when it signed in
    notice: str | None = None       # why this request found itself signed out (``timed_out``, ``signed_out``)

    @property
    def signed_in(self) -> bool:
        return bool(self.msisdn and self.visit)

    def sign_out(self) -> None:
        self.msisdn = self.visit = self.pending = None
        self.since = 0.0
        self.csrf = secrets.token_urlsafe(24)   # a new visit, a new token

    def to_dict(self) -> dict[str, Any]:
        return {"c": self.csrf, "l": self.lang, "p": self.pending, "m": self.msisdn, "v": self.visit,
                "s": self.since}

    @classmethod
    def from_dict(cls, raw: Any) -> Visit:
        if not isinstance(raw, dict) or not isinstance(raw.get("c"), str):
            return cls()

        def text(key: str) -> str | None:
            value = raw.get(key)
            return value if isinstance(value, str) else None

        since = raw.get("s")
        return cls(csrf=raw["c"], lang=text("l"), pending=text("p"), msisdn=text("m"), visit=text("v"),
                   since=float(since) if isinstance(since, (int, float)) else 0.0)


@dataclass(frozen=True)
class VisitCookie:
    secret: str | bytes
    idle_seconds: int
    max_seconds: int
    secure: bool = False
    clock: Callable[[], float] = time.time

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=_SALT)

    def load(self, raw: str | None) -> Visit:
        """The visit the cookie carries; a fresh one if there is none or it is not ours."""
        if not raw or len(raw) > _MAX_COOKIE_CHARS:
            return Visit()
        serializer = self._serializer()
        try:
            visit = Visit.from_dict(serializer.loads(raw, max_age=self.idle_seconds))
        except SignatureExpired as expired:
            # Genuine but idle too long: keep the language, say why the customer is signed out.
            old = Visit.from_dict(serializer.load_payload(expired.payload)) if expired.payload else Visit()
            return Visit(lang=old.lang, notice="timed_out" if old.signed_in else None)
        except BadSignature:
            return Visit()
        if visit.signed_in and self.clock() - visit.since > self.max_seconds:
            return Visit(lang=visit.lang, notice="timed_out")
        return visit

    def save(self, response: Response, visit: Visit) -> None:
        response.set_cookie(COOKIE, self._serializer().dumps(visit.to_dict()), path="/web", httponly=True,
                            secure=self.secure, samesite="Lax")
