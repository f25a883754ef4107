"""Sending WhatsApp messages through Meta's Cloud API (the Graph API), with ``requests``.

Meta ships no Python SDK: a message is ``POST {GRAPH_API_URL}/{phone_number_id}/messages`` with a
bearer token and a JSON body (``messaging_product: whatsapp``, ``to``, ``type`` and the part of that
type: ``text``, ``interactive``...). The answer names the message::

    {"messaging_product": "whatsapp", "contacts": [{"input": "221...", "wa_id": "221..."}],
     "messages": [{"id": "wamid.HBgL..."}]}

An error is ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``. A 4xx refuses
this message for good (unknown number, outside the 24-hour window, bad token: ``Rejected`` with
Meta's code) except 429 (throttled); 429, 5xx and transport failures are worth another try
(``BackendUnavailable``). The client itself tries once more at once only when the request surely
did not go through or Meta said it failed (connection refused, 5xx, 429): a read timeout may hide a
sent message, and the Graph API has no idempotency key, so that one is left to the caller.
The token never reaches a log line; recipients are masked.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests

from dialogs.backends import BackendUnavailable, Rejected

from .masking import mask

__all__ = ["MetaWhatsApp", "SentMessage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: str


class MetaWhatsApp:
    """One Graph API base and access token: ``send(phone_number_id, to, message) -> SentMessage``."""

    def __init__(self, base_url: str, access_token: str, *, connect_timeout: float = 1.0,
                 read_timeout: float = 3.0, retries: int = 1, backoff_seconds: float = 0.2) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = (connect_timeout, read_timeout)
        self._retries, self._backoff = retries, backoff_seconds
        self._http = requests.Session()
        self._http.headers.update({"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"})

    def send(self, phone_number_id: str, to: str, message: dict[str, Any]) -> SentMessage:
        """Send one message (``message`` without ``to``/``messaging_product``) from our number
        ``phone_number_id`` to the WhatsApp user ``to`` (``wa_id`` digits)."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **message}
        url = f"{self._base}/{phone_number_id}/messages"
        for attempt in range(self._retries + 1):
            try:
                response = self._http.post(url, json=body, timeout=self._timeout)
            except requests.ConnectionError as exc:    # refused, reset, or no connection in time
                if attempt < self._retries:
                    time.sleep(self._backoff * (2 ** attempt))
                    continue
                log.warning("Graph API unreachable for a message to %s: %s", mask(to), type(exc).__name__)
                raise BackendUnavailable("graph api unreachable") from None
            except requests.RequestException as exc:   # a read timeout: it may have been sent
                log.warning("Graph API did not answer for a message to %s: %s", mask(to), type(exc).__name__)
                raise BackendUnavailable("graph api timed out") from None
            if response.status_code == 429 or response.status_code >= 500:
                if attempt < self._retries:
                    time.sleep(self._backoff * (2 ** attempt))
                    continue
                raise BackendUnavailable(f"graph api status {response.status_code}")
            return self._result(response, to)
        raise BackendUnavailable("graph api unreachable")   # pragma: no cover - the loop always returns or raises

    def deliver(self, phone_number_id: str, to: str, message: dict[str, Any]) -> str | None:
        """``send`` for a caller that only needs to know: taken (its message id, which Meta's statuses name),
        refused for good (``None``); ``BackendUnavailable`` still raises (worth another try later)."""
        try:
            return self.send(phone_number_id, to, message).message_id
        except Rejected:
            return None

    @staticmethod
    def _result(response: requests.Response, to: str) -> SentMessage:
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not response.ok:
            error = payload.get("error") if isinstance(payload, dict) else None
            code = str(error.get("code", "")) if isinstance(error, dict) else ""
            log.warning("Graph API refused a message to %s: %s %s", mask(to), response.status_code, code)
            raise Rejected(f"meta_{code or response.status_code}", code)
        messages = payload.get("messages") if isinstance(payload, dict) else None
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict) \
                or not isinstance(messages[0].get("id"), str):
            raise BackendUnavailable("graph api answer without a message id")
        return SentMessage(messages[0]["id"])
