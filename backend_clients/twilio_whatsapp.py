"""Sending WhatsApp messages through Twilio's REST API with its official SDK (``twilio``).

``TWILIO_API_URL`` replaces ``https://api.twilio.com`` (the SDK's ``client.api.base_url``)
so tests and staging talk to a fake speaking the same protocol. The SDK logs whole requests
(numbers and bodies) at INFO on ``twilio.http_client``: that logger is kept at WARNING.

Two kinds of message: free text (``send``: ``Body``), which WhatsApp delivers only within 24 hours
of the customer's last message, and an approved template (``send_template``: ``ContentSid``, the
template's id in Twilio's Content API, and ``ContentVariables``, a JSON object of its ``{{1}}``,
``{{2}}``... values), which WhatsApp delivers at any time. Twilio takes free text outside the window
(201, ``queued``) and reports later, in the status callback, that it could not deliver it
(``undelivered`` or ``failed`` with ``ErrorCode`` 63016, ``OUTSIDE_WINDOW``); it may also refuse it at
once with that code (``Rejected("twilio_63016")``).

Errors: Twilio answers a refusal with a JSON error (``code``, ``message``, ``status``) that
the SDK raises as ``TwilioRestException``. A 4xx refuses this message for good (unknown
number, outside the 24-hour window, ...: ``Rejected``) except 429 (busy); 5xx, 429 and
transport failures are worth another try (``BackendUnavailable``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Final

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from dialogs.backends import BackendUnavailable, Rejected

from .africastalking_sms import SentSms
from .masking import mask
from .template_params import template_param

__all__ = ["MAX_BODY_CHARS", "OUTSIDE_WINDOW", "TwilioWhatsApp"]

log = logging.getLogger(__name__)
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

OUTSIDE_WINDOW: Final = "63016"     # Twilio's code: free text outside the 24-hour customer-service window
MAX_BODY_CHARS: Final = 1600        # Twilio's cap on one message's body


class TwilioWhatsApp:
    """One Twilio account and WhatsApp sender: ``send("+221...", text)`` and
    ``send_template("+221...", "HX...", params)`` -> ``SentSms``. ``from_number`` is the sender by default; a
    reply goes from the account's number the customer wrote to (``send(..., from_number=...)``). With neither,
    a message is ``Rejected`` before any request."""

    def __init__(self, account_sid: str, auth_token: str, from_number: str, api_url: str | None = None,
                 status_callback: str | None = None, timeout: float = 5.0) -> None:
        self._client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if api_url:
            self._client.api.base_url = api_url.rstrip("/")
        self._from = _whatsapp(from_number) if from_number else ""
        self._status_callback = status_callback

    def send(self, to: str, text: str, from_number: str = "") -> SentSms:
        """One message of free text, at most ``MAX_BODY_CHARS`` (Twilio refuses a longer body: the caller
        splits it, ``app/whatsapp_letters.py``), from ``from_number`` (one of the account's WhatsApp numbers)
        or the default sender."""
        return self._create(to, from_number, body=text)

    def send_template(self, to: str, content_sid: str, params: Sequence[str] = ()) -> SentSms:
        """The approved template ``content_sid`` with ``params`` as its ``{{1}}``, ``{{2}}``...; no ``Body``
        (Twilio refuses a template sent as a body outside the window)."""
        variables = {str(n): template_param(p) for n, p in enumerate(params, start=1)}
        return self._create(to, "", content_sid=content_sid, **(
            {"content_variables": json.dumps(variables, ensure_ascii=False)} if variables else {}))

    def _create(self, to: str, from_number: str, **content: Any) -> SentSms:
        sender = _whatsapp(from_number) if from_number else self._from
        if not sender:
            log.warning("no Twilio WhatsApp number to send from to %s (TWILIO_WHATSAPP_FROM)", mask(to))
            raise Rejected("twilio_no_sender_number")
        try:
            kwargs = {"status_callback": self._status_callback} if self._status_callback else {}
            message = self._client.messages.create(to=_whatsapp(to), from_=sender, **content, **kwargs)
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                raise BackendUnavailable(f"twilio status {exc.status}") from None
            log.warning("Twilio refused a WhatsApp message to %s: %s %s", mask(to), exc.status, exc.code)
            raise Rejected(f"twilio_{exc.code or exc.status}") from None
        except requests.RequestException as exc:
            log.warning("Twilio unreachable for a WhatsApp message to %s: %s", mask(to), type(exc).__name__)
            raise BackendUnavailable("twilio unreachable") from None
        return SentSms(str(message.sid), str(message.status or "queued"))


def _whatsapp(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"
