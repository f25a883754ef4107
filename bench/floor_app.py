"""The floor of ``bench/ussd_hops.py``: the least a USSD hop served by Flask + Redis can cost.

One endpoint, ``POST /hop``, takes the same Africa's Talking form as the engine, does one Redis
GET and one SET (with a TTL) of a ~600-byte value keyed by ``sessionId`` -- what the engine does
at the very least to load and save a session -- and answers a ``CON`` line in ``text/plain``.
No menus, no state machine, no back end, no SQL.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``make bench`` sets it), it also times its GET + SET, the least a hop's
session store can cost on this machine under this load, in ``floor_redis_seconds`` (on ``GET /metrics``, summed
over the workers, in the buckets of the engine's own time): the benchmark reads the engine's own time beside it.
That is one histogram observation per hop (the engine makes six), left out of the time it measures.

Served by gunicorn exactly like the engine: ``gunicorn --chdir bench floor_app:app``
with ``REDIS_URL`` in the environment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import redis
from flask import Flask, Response, request

VALUE_BYTES = 600
TTL_SECONDS = 180


def create_app(redis_url: str, timed: bool = False) -> Flask:
    """The floor; ``timed``: its GET + SET timed in ``floor_redis_seconds`` (multiprocess mode: the
    environment's ``PROMETHEUS_MULTIPROC_DIR``), served on ``GET /metrics``."""
    app = Flask(__name__)
    client = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    observe = _redis_timer(app) if timed else None

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", mimetype="text/plain")

    @app.post("/hop")
    def hop() -> Response:
        session_id = request.form.get("sessionId", "")
        text = request.form.get("text", "")
        key = f"floor:s:{session_id}"
        started = time.perf_counter()
        previous: bytes = client.get(key) or b""  # type: ignore[assignment]
        value = (text.encode() + b"|" + previous)[:VALUE_BYTES].ljust(VALUE_BYTES, b".")
        client.set(key, value, ex=TTL_SECONDS)
        if observe is not None:
            observe(time.perf_counter() - started)
        return Response(f"CON floor hop {len(text.split('*')) if text else 0}", mimetype="text/plain")

    return app


def _redis_timer(app: Flask) -> Callable[[float], None]:
    """``floor_redis_seconds`` (label ``channel="ussd"``, as the engine's times are read) and ``GET /metrics``."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Histogram,
        generate_latest,
        multiprocess,
    )

    from app.ops import HOP_BUCKETS

    histogram = Histogram("floor_redis_seconds", "The floor's Redis GET + SET for one hop", ["channel"],
                          buckets=HOP_BUCKETS).labels(channel="ussd")

    @app.get("/metrics")
    def metrics() -> Response:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    return histogram.observe


app = create_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
                 timed=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")))
