"""Signed payment callbacks: POST the stored event to the payer's ``callback_url``, retried with backoff.

The header is ``X-Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
Deliveries run in daemon threads; up to ``MAX_TRIES`` attempts, waiting ``backoff``, ``2*backoff`` ...
between them, until the receiver answers 2xx. Only URLs that ``allows`` accepts (the configured
callback hosts) receive a signed event: any other is refused before a byte is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable

import requests
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from .models import PaymentIntent
from .wire import utcnow

__all__ = ["MAX_TRIES", "SIGNATURE_HEADER", "CallbackSender", "sign", "verify"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Payment-Signature"
MAX_TRIES = 5


def sign(secret: str, raw_body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Payment-Signature`` value for ``raw_body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, raw_body: bytes, header: str, tolerance: int = 300) -> bool:
    """Whether ``header`` is a valid signature of ``raw_body`` made within ``tolerance`` seconds."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = sign(secret, raw_body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class CallbackSender:
    """Delivers a payment's stored event (same ``event_id`` on every resend) in the background."""

    def __init__(self, sessions: sessionmaker[Session], secret: str, allows: Callable[[str], bool],
                 backoff: float = 0.5, timeout: float = 5.0) -> None:
        self._sessions = sessions
        self._secret = secret
        self._allows = allows
        self._backoff = backoff
        self._timeout = timeout
        self._stopping = threading.Event()

    def send(self, payment_id: str, callback_url: str, event_body: str) -> threading.Thread | None:
        """Deliver in the background; ``None`` (nothing sent) when the URL's host is not allowed."""
        if not self._allows(callback_url):
            log.warning("callback for %s not sent: %s is not a configured callback host", payment_id,
                        callback_url.split("/")[2] if callback_url.count("/") >= 2 else "?")
            return None
        thread = threading.Thread(target=self._deliver, args=(payment_id, callback_url, event_body.encode()),
                                  name=f"callback-{payment_id}", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self._stopping.set()

    def _deliver(self, payment_id: str, url: str, raw: bytes) -> None:
        try:
            delay = self._backoff
            for attempt in range(1, MAX_TRIES + 1):
                if self._stopping.is_set():
                    return
                delivered = self._attempt(url, raw, attempt)
                self._record(payment_id, delivered)
                if delivered:
                    return
                if attempt < MAX_TRIES and self._stopping.wait(delay):
                    return
                delay *= 2
            log.warning("callback for %s to %s given up after %d tries", payment_id, url, MAX_TRIES)
        except Exception:  # a background thread must never die with a traceback on stderr
            log.exception("callback delivery for %s failed", payment_id)

    def _attempt(self, url: str, raw: bytes, attempt: int) -> bool:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, raw)}
        try:
            answer = requests.post(url, data=raw, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            log.info("callback try %d to %s failed: %s", attempt, url, exc)
            return False
        if 200 <= answer.status_code < 300:
            return True
        log.info("callback try %d to %s answered %s", attempt, url, answer.status_code)
        return False

    def _record(self, payment_id: str, delivered: bool) -> None:
        values: dict[str, object] = {"callback_attempts": PaymentIntent.callback_attempts + 1}
        if delivered:
            values["callback_delivered_at"] = utcnow()
        try:
            with self._sessions() as session, session.begin():
                session.execute(update(PaymentIntent).where(PaymentIntent.payment_id == payment_id).values(**values))
        except Exception:
            log.exception("could not record the callback attempt for %s", payment_id)
