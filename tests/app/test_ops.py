"""Operational endpoints: health, readiness of the store and the back office, Prometheus metrics."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from app.factory import create_app

from ..support.engine import UssdPhone
from ..support.ports import closed_port


def _samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_health_and_readiness(app, settings):
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"session_store": "ok", "backoffice": "ok"}
    down = create_app(replace(settings, backoffice_url=f"http://127.0.0.1:{closed_port()}")).test_client()
    not_ready = down.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.get_json()["checks"]["backoffice"] == "down"


def test_metrics_count_hops_and_split_engine_time_from_back_ends(app):
    client = app.test_client()
    phone = UssdPhone(client, "+221770000001")
    phone.dial()
    phone.answer("1")
    phone.answer("0")
    samples = _samples(client)
    ussd = (("channel", "ussd"),)
    assert samples[("engine_hop_seconds_count", ussd)] == 3
    assert samples[("engine_own_seconds_count", ussd)] == 3
    assert samples[("engine_hops_total", (("channel", "ussd"), ("end", "false")))] == 3
    total, own = samples[("engine_hop_seconds_sum", ussd)], samples[("engine_own_seconds_sum", ussd)]
    steps = samples[("engine_step_seconds_sum", ussd)]
    assert 0 < own < total and steps > 0
    assert abs(total - own - steps) < 1e-6
    client.post("/ussd/africastalking", data={"sessionId": "x"})
    assert _samples(client)[("channel_rejected_requests_total", ussd)] == 1
