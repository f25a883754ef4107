"""The floor of ``bench/ussd_hops.py``: the least a USSD hop served by Flask + Redis can cost.

One endpoint, ``POST /hop``, takes the same Africa's Talking form as the engine, does one Redis
GET and one SET (with a TTL) of a ~600-byte value keyed by ``sessionId`` -- what the engine does
at the very least to load and save a session -- and answers a ``CON`` line in ``text/plain``.
No menus, no state machine, no back end, no SQL, no metrics.

Served by gunicorn exactly like the engine: ``gunicorn --chdir bench floor_app:app``
with ``REDIS_URL`` in the environment.
"""

from __future__ import annotations

import os

import redis
from flask import Flask, Response, request

VALUE_BYTES = 600
TTL_SECONDS = 180


def create_app(redis_url: str) -> Flask:
    app = Flask(__name__)
    client = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", mimetype="text/plain")

    @app.post("/hop")
    def hop() -> Response:
        session_id = request.form.get("sessionId", "")
        text = request.form.get("text", "")
        key = f"floor:s:{session_id}"
        previous: bytes = client.get(key) or b""  # type: ignore[assignment]
        value = (text.encode() + b"|" + previous)[:VALUE_BYTES].ljust(VALUE_BYTES, b".")
        client.set(key, value, ex=TTL_SECONDS)
        return Response(f"CON floor hop {len(text.split('*')) if text else 0}", mimetype="text/plain")

    return app


app = create_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
