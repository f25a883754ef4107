"""The page behind our e-mails' unsubscribe link: ``GET|POST /web/unsubscribe/<token>``.

``GET`` asks (in the language the token names, French or English): stop e-mails about this topic,
or all e-mail; ``POST`` does it. The POST is what mail providers send for one click (RFC 8058:
``List-Unsubscribe=One-Click``, no cookie), so it carries no CSRF token: the signed token
(``unsubscribe_links``) is the authority, and it only ever stops e-mail for the address it names
(the same messages then come by SMS). A second click changes nothing; clicks are counted per client
address (``Throttle``); each new stop is a security event (``email_unsubscribed``, no address in it) and
lands in the consent history (``EmailStops``). A forged or altered token gets a 404 page saying the
link is not valid, never a 500. Pages share the web fallback's template, style sheet and headers
(strict CSP, no script, no-store: ``WebAdapter`` sets them for every ``/web/`` path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from flask import Blueprint, Response, render_template, request

from dialogs.email_address import mask_email
from dialogs.stores import Throttle
from engine import SecurityAudit, SecurityEvent

from .texts import text
from .unsubscribe_links import ALL_EMAIL, PATH, Unsubscribe, UnsubscribeLinks, topic_words

__all__ = ["EmailStops", "unsubscribe_blueprint"]

log = logging.getLogger("web_fallback.unsubscribe")

CLICKS_PER_ADDRESS = 30          # per client address and window: far above a person, below a script
CLICK_WINDOW_SECONDS = 600


class EmailStops(Protocol):
    def stop(self, address: str, topic: str, *, source: str) -> bool:
        """Stop ``topic`` (or ``all``) for ``address``; True when new. Raises when the database is down."""


def unsubscribe_blueprint(links: UnsubscribeLinks, stops: EmailStops, throttle: Throttle,
                          security: SecurityAudit, *, brand: str, help_line: str,
                          client_address: Callable[[str | None, str | None], str]) -> Blueprint:
    bp = Blueprint("web_unsubscribe", __name__, url_prefix=PATH)

    def page(language: str, status: int, template: str = "unsubscribe.html", **context: object) -> Response:
        def t(key: str, **values: str) -> str:
            return text(language, key, **{"brand": brand, "help_line": help_line, **values})
        body = render_template(f"web_customer/{template}", t=t, language=language, brand=brand, **context)
        return Response(body, status=status, mimetype="text/html")

    def invalid() -> Response:
        language = request.accept_languages.best_match(("fr", "en")) or "fr"
        # Not "request refused": the customer did nothing wrong, the link is broken (cut by a mail client).
        return page(language, 404, "error.html", heading=text(language, "unsub_invalid_title"),
                    message=text(language, "unsub_invalid"))

    def shown(found: Unsubscribe) -> dict[str, str]:
        return {"topic": topic_words(found.language, found.topic), "address": mask_email(found.address)}

    @bp.get("/<token>")
    def ask(token: str) -> Response:
        found = links.read(token)
        if found is None:
            return invalid()
        everything = None if found.topic == ALL_EMAIL else \
            f"{PATH}/{links.token(found.address, ALL_EMAIL, found.language)}"
        return page(found.language, 200, action=f"{PATH}/{token}", all_action=everything, done=False,
                    **shown(found))

    @bp.post("/<token>")
    def stop(token: str) -> Response:
        who = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"))
        found = links.read(token)
        if not throttle.hit(f"unsubscribe:{who}", CLICKS_PER_ADDRESS, CLICK_WINDOW_SECONDS):
            language = found.language if found else "fr"
            return page(language, 429, "error.html", message=text(language, "throttled"))
        if found is None:
            log.info("unsubscribe refused: invalid token")
            return invalid()
        # A mail provider's one-click POST says so in its body; a person's click on the page says the same.
        source = "one-click" if request.form.get("List-Unsubscribe") == "One-Click" else "unsubscribe page"
        if stops.stop(found.address, found.topic, source=source):
            security.record(SecurityEvent("email_unsubscribed", "email", detail=found.topic[:40],
                                          extra={"source": source}))
            log.info("e-mail unsubscribed address=%s topic=%s", mask_email(found.address), found.topic)
        return page(found.language, 200, done=True, **shown(found))

    return bp
