"""The reference back office with its incident API switchable to "down" (503), the rest untouched.

So a test can keep identifying the customer (billing) while tickets cannot be opened, then bring
the incident system back and watch kept reports being forwarded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import flask

__all__ = ["IncidentSwitch"]


class IncidentSwitch:
    """A WSGI wrapper: the incident paths answer 503 while ``down`` is set."""

    PATHS = ("/api/v1/tickets", "/api/v1/outages")

    def __init__(self, wsgi: flask.Flask) -> None:
        self.wsgi = wsgi
        self.down = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.down and str(environ.get("PATH_INFO", "")).startswith(self.PATHS):
            start_response("503 SERVICE UNAVAILABLE", [("Content-Type", "application/json")])
            return [b'{"error": "unavailable", "message": "incident system down"}']
        return self.wsgi(environ, start_response)
