"""Operational endpoints: liveness, readiness (store and back office), Prometheus metrics."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

from flask import Blueprint, Response, jsonify
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

__all__ = ["HOP_BUCKETS", "Metrics", "multiprocess_registry", "ops_blueprint", "serve_metrics", "shared_metrics"]


# Fine below 2.5 ms, where the engine's own time lies (its aims: p50 0.3 ms, p99 2 ms), finest around the p50's
# aim, so that a quantile read from them is not a bucket's edge; an observation writes one bucket whatever their
# number. The benchmark's floor times its Redis GET + SET in the same buckets (``bench/floor_app.py``).
HOP_BUCKETS: Final = (0.0001, 0.00015, 0.0002, 0.00025, 0.0003, 0.00035, 0.0004, 0.0005, 0.00075, 0.001, 0.0015,
                      0.002, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """The product's Prometheus metrics, on a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.hops = Counter("engine_hops_total", "Hops answered", ["channel", "end"], registry=self.registry)
        buckets = HOP_BUCKETS
        self.request_seconds = Histogram("channel_request_seconds", "Time to answer one provider request",
                                         ["channel"], registry=self.registry, buckets=buckets)
        self.hop_seconds = Histogram("engine_hop_seconds", "Time in the engine for one hop, back ends included",
                                     ["channel"], registry=self.registry, buckets=buckets)
        self.own_seconds = Histogram("engine_own_seconds", "Time in the engine for one hop minus the dialog "
                                     "steps and the waits (session store, flow, rendering)", ["channel"],
                                     registry=self.registry, buckets=buckets)
        # The CPU share of the own time: what the code costs, apart from the session store's round trip and the
        # time the hop's thread waited for a CPU (a busy machine stretches the own time, not this).
        self.own_cpu_seconds = Histogram("engine_own_cpu_seconds", "CPU time of the engine's own work for one "
                                         "hop (the hop's thread, dialog steps left out)", ["channel"],
                                         registry=self.registry, buckets=buckets)
        self.wait_seconds = Histogram("engine_wait_seconds", "Time one hop waited: for the engine's turnstile "
                                      "(another hop's own work in the process) or for its session, held by "
                                      "another hop", ["channel"], registry=self.registry, buckets=buckets)
        self.step_seconds = Histogram("engine_step_seconds", "Time in dialog steps (back-end calls) for one hop",
                                      ["channel"], registry=self.registry, buckets=buckets)
        self.rejected = Counter("channel_rejected_requests_total", "Malformed requests refused", ["channel"],
                                registry=self.registry)
        # The chatbot's action server counts here (its own process: under `make run` its values reach /metrics
        # through PROMETHEUS_MULTIPROC_DIR like a worker's).
        self.chat_guests = Counter("chat_guest_conversations_total", "New chatbot conversations nobody signed "
                                   "in, admitted or refused over the guests' budget a minute", ["outcome"],
                                   registry=self.registry)
        # Sign-in codes not sent because the budget of codes for unidentified requesters was spent (the web's and
        # the chat's sign-in; ``window``: the minute's or the hour's budget).
        self.codes_refused = Counter("sign_in_codes_refused_total", "Sign-in codes refused because the budget of "
                                     "codes for requesters not yet identified was spent", ["channel", "window"],
                                     registry=self.registry)
        # Sign-in attempts refused by the limits per number or per requester (``attempt``: a code ``request`` or
        # a code ``check``): every refusal, where the security audit keeps one row per key and window.
        self.sign_in_throttled = Counter("sign_in_throttled_total", "Sign-in attempts refused by the limits per "
                                         "number or per requester", ["channel", "attempt"], registry=self.registry)
        # The worker's: payments it stopped asking the provider about, their fate unknown (an agent's).
        self.payments_unresolved = Counter("payments_unresolved_total", "Payments without the provider's id "
                                           "the worker gave up asking about by our key, left to an agent",
                                           registry=self.registry)
        # The worker's: payments never sent (the customer was told nothing was charged) that the provider never
        # answered about by our key all along: maybe taken after all, flagged ``unanswered`` for an agent.
        self.payments_unanswered = Counter("payments_unanswered_total", "Payments never sent to the provider that "
                                           "it never answered about by our key until the worker stopped asking, "
                                           "left to an agent", registry=self.registry)
        # Each channel's series, looked up once (``labels`` costs a lock and a dict look-up per call).
        self._series: dict[tuple[str, bool], tuple[Any, Any, Any, Any, Any, Any]] = {}

    def observe(self, *, channel: str, seconds: float, step_seconds: float, wait_seconds: float,
                end: bool, cpu_seconds: float) -> None:
        """``engine.HopObserver``: the engine reports each hop here."""
        series = self._series.get((channel, end))
        if series is None:
            series = self._series[(channel, end)] = (
                self.hop_seconds.labels(channel), self.own_seconds.labels(channel),
                self.step_seconds.labels(channel), self.wait_seconds.labels(channel),
                self.hops.labels(channel, str(end).lower()), self.own_cpu_seconds.labels(channel))
        hop, own, step, wait, hops, own_cpu = series
        hop.observe(seconds)
        own.observe(max(0.0, seconds - step_seconds - wait_seconds))
        step.observe(step_seconds)
        wait.observe(wait_seconds)
        hops.inc()
        own_cpu.observe(cpu_seconds)


def ops_blueprint(metrics: Metrics, checks: dict[str, Callable[[], bool]], expose_metrics: bool = True) -> Blueprint:
    """Health and readiness; ``/metrics`` too unless it is served on an internal port (``METRICS_PORT``)."""
    bp = Blueprint("ops", __name__)

    @bp.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @bp.get("/readyz")
    def readyz() -> tuple[Response, int]:
        results = {}
        for name, check in checks.items():
            try:
                results[name] = "ok" if check() else "down"
            except Exception:  # noqa: BLE001 - any failure of a check reads as "down"
                results[name] = "down"
        ready = all(v == "ok" for v in results.values())
        return jsonify(status="ready" if ready else "not ready", checks=results), 200 if ready else 503

    if expose_metrics:
        @bp.get("/metrics")
        def metrics_endpoint() -> Response:
            if shared_metrics():
                # Several gunicorn workers: sum what every worker wrote (see app/gunicorn_conf.py).
                return Response(generate_latest(multiprocess_registry()), mimetype=CONTENT_TYPE_LATEST)
            return Response(generate_latest(metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    return bp


def shared_metrics() -> bool:
    """Whether this process writes its metrics to ``PROMETHEUS_MULTIPROC_DIR`` for another to sum and serve
    (a worker under ``make run`` or gunicorn, the action server under ``make run``)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def multiprocess_registry(path: str | None = None) -> CollectorRegistry:
    """A registry that sums what every worker wrote to ``path`` (default: ``PROMETHEUS_MULTIPROC_DIR``)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def serve_metrics(host: str, port: int, source: str | CollectorRegistry) -> Callable[[], None]:
    """Serve metrics on ``host:port`` in a thread of this process, away from the public port: the workers'
    summed (``source`` the directory they write to: the supervisor of ``make run``) or one process's own
    registry (the action server run alone). Returns the function that stops it."""
    registry = multiprocess_registry(source) if isinstance(source, str) else source
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
