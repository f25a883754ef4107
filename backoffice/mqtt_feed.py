"""MQTT subscriber: meter readings published on ``meters/<meter_id>/readings`` go through the same rules.

Payload ``{"at": "2026-11-25T10:00:00Z", "index_kwh": "12345.678"}``; the meter id comes from the
topic. Rejected readings are logged (the broker has nobody to answer to).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from .readings import IngestReport, ingest

__all__ = ["TOPIC", "MqttReadingFeed"]

log = logging.getLogger(__name__)

TOPIC = "meters/+/readings"


class MqttReadingFeed:
    """Subscribes to ``TOPIC`` at ``url`` (``mqtt://[user:pass@]host[:1883]``) once ``start()`` is called."""

    def __init__(self, url: str, sessions: sessionmaker[Session], client_id: str | None = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
            raise ValueError(f"MQTT_URL must start with mqtt:// or mqtts://, not {url!r}")
        self._host = parsed.hostname or "127.0.0.1"
        self._tls = parsed.scheme in ("mqtts", "ssl")
        self._port = parsed.port or (8883 if self._tls else 1883)
        self._sessions = sessions
        self.subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=client_id or f"backoffice-{uuid.uuid4().hex[:8]}")
        if parsed.username:
            self._client.username_pw_set(parsed.username, parsed.password)
        if self._tls:
            self._client.tls_set()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)

    def start(self, wait: float = 0.0) -> None:
        """Connect in the background (reconnecting on loss); optionally wait up to ``wait`` s for the subscription."""
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if wait > 0 and not self.subscribed.wait(wait):
            log.warning("MQTT broker %s:%s: not subscribed after %.1f s", self._host, self._port, wait)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # ------------------------------------------------------------ callbacks (paho network thread)
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any,
                    _properties: Any = None) -> None:
        if getattr(reason_code, "is_failure", False):
            log.warning("MQTT connection refused: %s", reason_code)
            return
        client.subscribe(TOPIC, qos=1)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, _reason_codes: Any,
                      _properties: Any = None) -> None:
        self.subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.handle(message.topic, bytes(message.payload))
        except Exception:  # never let the network thread die
            log.exception("MQTT message on %s could not be handled", message.topic)

    def handle(self, topic: str, payload: bytes) -> IngestReport:
        """Ingest one published reading; returns the report (one item)."""
        parts = topic.split("/")
        meter_id = parts[1] if len(parts) == 3 and parts[0] == "meters" and parts[2] == "readings" else ""
        try:
            item: Any = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            item = None
        if isinstance(item, dict):
            item = {**item, "meter_id": meter_id}
        with self._sessions() as session, session.begin():
            report = ingest(session, [item], source="mqtt")
        for rejection in report.rejected:
            log.warning("MQTT reading on %s rejected: %s", topic, rejection.reason)
        return report
