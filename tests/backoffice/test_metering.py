"""Metering over HTTP and MQTT: latest reading, consumption, batch ingestion rules, prepaid credit."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

import flask
import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from backoffice.mqtt_feed import MqttReadingFeed
from tests.support.polling import until
from tests.support.services import MQTT_TEST_URL, need_service

# The service's now, fixed half an hour after the seeded readings end: windows read one after the other end at
# the same instant, whatever the wall clock does between two requests.
AFTER_THE_SEED = pytest.mark.parametrize("product_clock", [timedelta(minutes=30)], ids=["seed+30min"],
                                         indirect=True)


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _latest(api: str, http: requests.Session, meter_id: str) -> dict[str, str]:
    answer = http.get(f"{api}/meters/{meter_id}/readings/latest")
    assert answer.status_code == 200
    latest: dict[str, str] = answer.json()
    return latest


def test_ninety_days_of_hourly_readings_end_at_seed_time(api: str, http: requests.Session,
                                                         backoffice_seeded_at: datetime) -> None:
    latest = _latest(api, http, "MTR-1000001")
    assert datetime.fromisoformat(latest["at"]) == backoffice_seeded_at   # the seed's clock, not the wall clock
    consumption = http.get(f"{api}/meters/MTR-1000001/consumption?days=90").json()
    assert Decimal(consumption["kwh"]) > 0
    assert consumption["previous_kwh"] == "0"  # nothing was recorded before the 90 days


@AFTER_THE_SEED
def test_consumption_is_the_index_difference(api: str, http: requests.Session) -> None:
    week = http.get(f"{api}/meters/MTR-1000001/consumption?days=7").json()
    assert week["meter_id"] == "MTR-1000001" and week["days"] == 7
    assert Decimal(5) < Decimal(week["kwh"]) < Decimal(30)  # 46 to 74 kWh a month, as its bills say
    assert Decimal(5) < Decimal(week["previous_kwh"]) < Decimal(30)
    assert week["last_reading"] == _latest(api, http, "MTR-1000001")
    two_weeks = http.get(f"{api}/meters/MTR-1000001/consumption?days=14").json()
    assert Decimal(two_weeks["kwh"]) == Decimal(week["kwh"]) + Decimal(week["previous_kwh"])
    default = http.get(f"{api}/meters/MTR-1000001/consumption").json()
    assert default["days"] == 7


@AFTER_THE_SEED
def test_a_new_reading_raises_consumption(api: str, http: requests.Session) -> None:
    before = http.get(f"{api}/meters/MTR-2000001/consumption?days=1").json()
    last = before["last_reading"]
    new_at = datetime.fromisoformat(last["at"]) + timedelta(seconds=30)
    new_index = Decimal(last["index_kwh"]) + Decimal("10.5")
    report = http.post(f"{api}/readings", json={"readings": [
        {"meter_id": "MTR-2000001", "at": _z(new_at), "index_kwh": str(new_index)}]}).json()
    assert report == {"accepted": 1, "rejected": []}
    after = http.get(f"{api}/meters/MTR-2000001/consumption?days=1").json()
    assert Decimal(after["kwh"]) == Decimal(before["kwh"]) + Decimal("10.5")
    assert after["last_reading"]["index_kwh"] == str(new_index)


def test_batch_reports_each_item(api: str, http: requests.Session) -> None:
    last = _latest(api, http, "MTR-1000001")
    last_at = datetime.fromisoformat(last["at"])
    index = Decimal(last["index_kwh"])
    readings = [
        {"meter_id": "MTR-1000001", "at": _z(last_at + timedelta(minutes=1)), "index_kwh": str(index + 1)},  # 0 ok
        {"meter_id": "MTR-1000001", "at": _z(last_at + timedelta(minutes=1)), "index_kwh": str(index + 1)},  # 1 dup
        {"meter_id": "MTR-1000001", "at": last["at"], "index_kwh": last["index_kwh"]},                    # 2 dup
        {"meter_id": "MTR-9", "at": _z(last_at), "index_kwh": "1"},                                       # 3 unknown
        {"meter_id": "MTR-1000001", "at": "yesterday", "index_kwh": "1"},                                 # 4 malformed
        {"meter_id": "MTR-1000001", "at": _z(last_at + timedelta(minutes=2)), "index_kwh": "lots"},       # 5 malformed
        "not an object",                                                                                  # 6 malformed
        {"meter_id": "MTR-1000001", "at": _z(last_at + timedelta(minutes=3)), "index_kwh": str(index)},   # 7 backwards
        {"meter_id": "MTR-1000001", "at": _z(last_at + timedelta(minutes=4)), "index_kwh": float(index + 2)},  # 8 ok
        {"meter_id": "MTR-1000001", "at": _z(last_at + timedelta(days=2)), "index_kwh": str(index + 9)},  # 9 future
    ]
    report = http.post(f"{api}/readings", json={"readings": readings}).json()
    assert report["accepted"] == 2
    reasons = {r["index"]: r["reason"] for r in report["rejected"]}
    assert reasons[1] == reasons[2] == "duplicate"
    assert reasons[3] == "unknown_meter"
    assert all(reasons[i].startswith("malformed") for i in (4, 5, 6, 9))
    assert reasons[7] == "index_backwards"
    assert set(reasons) == {1, 2, 3, 4, 5, 6, 7, 9}
    assert _latest(api, http, "MTR-1000001")["index_kwh"] == str(index + 2)


def test_batch_shape_and_size(api: str, http: requests.Session) -> None:
    assert http.post(f"{api}/readings", json={"readings": "x"}).status_code == 422
    assert http.post(f"{api}/readings", json={"readings": []}).json() == {"accepted": 0, "rejected": []}
    item = {"meter_id": "MTR-9", "at": "2026-01-01T00:00:00Z", "index_kwh": "1"}
    too_many = http.post(f"{api}/readings", json={"readings": [item] * 10_001})
    assert too_many.status_code == 413
    assert too_many.json()["error"] == "too_large"


def test_prepaid_credit_only_for_prepaid_meters(api: str, http: requests.Session) -> None:
    credit = http.get(f"{api}/meters/MTR-3000001/credit").json()
    assert credit["meter_id"] == "MTR-3000001" and credit["credit_kwh"] == "42.5"
    assert credit["updated_at"].endswith("Z")
    assert http.get(f"{api}/meters/MTR-1000001/credit").status_code == 404


def test_a_meter_that_never_reported_answers_204(backoffice_app: flask.Flask, api: str,
                                                 http: requests.Session) -> None:
    from backoffice.models import Meter

    with backoffice_app.extensions["backoffice"].sessions.begin() as session:
        session.add(Meter(meter_id="MTR-NEW", prepaid=False))
    answer = http.get(f"{api}/meters/MTR-NEW/readings/latest")
    assert answer.status_code == 204 and answer.content == b""
    assert http.get(f"{api}/meters/MTR-NEW/consumption").json()["last_reading"] is None


def test_reading_published_on_mqtt_is_visible_through_the_api(
    backoffice_app: flask.Flask, api: str, http: requests.Session
) -> None:
    need_service("MQTT", MQTT_TEST_URL, 1883)
    from backoffice.models import Meter

    meter_id = f"MTR-T{uuid.uuid4().hex[:8].upper()}"  # a unique topic: other runs cannot interfere
    with backoffice_app.extensions["backoffice"].sessions.begin() as session:
        session.add(Meter(meter_id=meter_id, prepaid=False))
    feed = MqttReadingFeed(MQTT_TEST_URL, backoffice_app.extensions["backoffice"].sessions)
    feed.start(wait=5)
    assert feed.subscribed.is_set()
    parsed = urlparse(MQTT_TEST_URL)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2)
    publisher.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
    publisher.loop_start()
    try:
        moment = datetime.now(UTC) - timedelta(minutes=5)
        at, later = _z(moment), _z(moment + timedelta(minutes=1))
        publisher.publish(f"meters/{meter_id}/readings", "not json", qos=1).wait_for_publish(5)
        publisher.publish(f"meters/{meter_id}/readings", json.dumps({"at": at, "index_kwh": "123.4"}),
                          qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10   # a wait, not a speed check: generous on a loaded machine
        answer = http.get(f"{api}/meters/{meter_id}/readings/latest")
        while answer.status_code == 204 and time.monotonic() < deadline:
            time.sleep(0.05)
            answer = http.get(f"{api}/meters/{meter_id}/readings/latest")
        assert answer.status_code == 200
        assert answer.json() == {"meter_id": meter_id, "at": at, "index_kwh": "123.4"}
        publisher.publish(f"meters/{meter_id}/readings", json.dumps({"at": at, "index_kwh": "999"}),
                          qos=1).wait_for_publish(5)
        # A duplicate instant is rejected by the same rules as the HTTP batch. The next reading arrives after it
        # (one publisher, one subscriber, in order) and is taken only if the index never went up to 999 (it never
        # goes backwards): seeing it is seeing the duplicate refused, without guessing how long that takes.
        publisher.publish(f"meters/{meter_id}/readings", json.dumps({"at": later, "index_kwh": "124.5"}),
                          qos=1).wait_for_publish(5)
        assert until(lambda: http.get(f"{api}/meters/{meter_id}/readings/latest").json()
                     == {"meter_id": meter_id, "at": later, "index_kwh": "124.5"}, seconds=10.0)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        feed.stop()
