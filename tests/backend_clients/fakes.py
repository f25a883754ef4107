"""A scriptable back end on loopback: answers from a list of canned replies and counts the hits.

Real HTTP, no patching of ``requests``: the clients' retries, timeouts and breaker meet a real
socket. One server serves a whole test module; each test sets its script::

    backend.script = [Reply(503), Reply(503), Reply(200, {"ok": True})]   # the last reply repeats
    ... call the client ...
    assert len(backend.hits) == 3
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

__all__ = ["Hit", "Reply", "ScriptedBackend"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None                 # JSON-encoded unless it is already bytes/str
    delay: float = 0.0               # seconds to sleep before answering
    content_type: str = "application/json"


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedBackend:
    script: list[Reply] = field(default_factory=lambda: [Reply(200, {})])
    hits: list[Hit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, *replies: Reply) -> None:
        with self._lock:
            self.script = list(replies) or [Reply(200, {})]
            self.hits = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.hits.append(Hit(request.method, request.path, request.query_string.decode(),
                                 dict(request.headers), request.get_data()))
            # Replies are consumed in order; the last one answers every further hit.
            reply = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if reply.delay:
            time.sleep(reply.delay)
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes | str):
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
        else:
            payload = json.dumps(reply.body).encode()
        return Response(payload, status=reply.status, content_type=reply.content_type)(environ, start_response)
