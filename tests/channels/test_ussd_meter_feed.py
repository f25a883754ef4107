"""A smart meter publishes a reading over MQTT; the customer sees it on the consumption screen at once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import requests
from paho.mqtt.enums import CallbackAPIVersion

from backoffice.mqtt_feed import MqttReadingFeed

from ..support.services import MQTT_TEST_URL, need_service


def test_a_reading_published_by_the_meter_shows_in_the_consumption_screen(phone, backoffice_app, backoffice_url):
    need_service("MQTT", MQTT_TEST_URL, 1883)
    latest = requests.get(f"{backoffice_url}/api/v1/meters/MTR-1000001/readings/latest", timeout=5).json()
    new_index = Decimal(latest["index_kwh"]) + Decimal("12.3")
    # A minute on: the seeded history ends at the seeding instant (the feed refuses going back in time).
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    feed = MqttReadingFeed(MQTT_TEST_URL, backoffice_app.extensions["backoffice"].sessions)
    feed.start(wait=5)
    parsed = urlparse(MQTT_TEST_URL)
    meter = mqtt.Client(CallbackAPIVersion.VERSION2)
    meter.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
    meter.loop_start()
    try:
        meter.publish("meters/MTR-1000001/readings",
                      json.dumps({"at": at.isoformat().replace("+00:00", "Z"), "index_kwh": str(new_index)}),
                      qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 15   # a wait for the MQTT feed, not a speed check
        while time.monotonic() < deadline:
            seen = requests.get(f"{backoffice_url}/api/v1/meters/MTR-1000001/readings/latest", timeout=5).json()
            if seen["index_kwh"] == str(new_index):
                break
            time.sleep(0.05)
        p = phone("+221770000001")
        p.dial()
        screen = p.answer("2")
    finally:
        meter.loop_stop()
        meter.disconnect()
        feed.stop()
    shown_index = f"{new_index:,.1f}".replace(",", " ").replace(".", ",")
    # Dakar time is UTC.
    assert screen.startswith(f"CON Relevé {at:%d/%m %H:%M}: {shown_index} kWh\n"), screen
