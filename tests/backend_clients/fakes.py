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

from tests.support.contract import contract_problems, documented_statuses

__all__ = ["Hit", "Reply", "ScriptedBackend"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None                 # JSON-encoded unless it is already bytes/str
    delay: float = 0.0               # seconds to sleep before answering
    content_type: str = "application/json"
    off_contract: bool = False       # a deliberately malformed answer (the contract check skips it)


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
    violations: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, *replies: Reply) -> None:
        with self._lock:
            self.script = list(replies) or [Reply(200, {})]
            self.hits = []
            self.violations = []

    def assert_on_contract(self) -> None:
        """Fail when a canned reply of this test broke ``backoffice/openapi.yaml``."""
        assert not self.violations, "canned replies off the contract:\n" + "\n".join(self.violations)

    def _problems(self, method: str, path: str, reply: Reply) -> list[str]:
        checked = 200 <= reply.status < 300 or reply.status in documented_statuses(method, path)
        if reply.off_contract or not checked:   # undocumented errors (503 ...) are faults, not answers
            return []
        if reply.body is not None and reply.content_type != "application/json":
            return [f"{method} {path} {reply.status}: {reply.content_type} body, the contract says JSON"]
        body = json.loads(reply.body) if isinstance(reply.body, bytes | str) else reply.body
        return contract_problems(method, path, reply.status, body)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.hits.append(Hit(request.method, request.path, request.query_string.decode(),
                                 dict(request.headers), request.get_data()))
            # Replies are consumed in order; the last one answers every further hit.
            reply = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            problems = self._problems(request.method, request.path, reply)
            self.violations.extend(problems)
        if problems:
            reply = Reply(500, {"error": "internal", "message": "fake reply off the contract: " + problems[0]})
        if reply.delay:
            time.sleep(reply.delay)
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes | str):
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
        else:
            payload = json.dumps(reply.body).encode()
        return Response(payload, status=reply.status, content_type=reply.content_type)(environ, start_response)
