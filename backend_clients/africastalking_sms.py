"""Sending SMS through Africa's Talking with its official SDK (``africastalking``).

The SDK has no public option for its base address; its service object keeps it in
``_baseUrl``, set here once from ``AT_API_URL`` so tests and staging point it at a fake
speaking the same protocol. The SDK validates recipients (``+`` and digits) before
sending and parses the answer as JSON only when its content type is ``application/json``.

Africa's Talking answers a send with one status per recipient::

    {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: XOF 25",
                        "Recipients": [{"statusCode": 101, "number": "+221...", "status": "Success",
                                        "cost": "XOF 25", "messageId": "ATXid_..."}]}}

Status codes 100-102 are accepted; 401-407 refuse this message for good (invalid number,
blacklisted, insufficient balance ...: ``Rejected``); 500-502 and any transport failure
are worth another try later (``BackendUnavailable``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService

from dialogs.backends import BackendUnavailable, Rejected

from .masking import mask

__all__ = ["AfricasTalkingSms", "SentSms"]

log = logging.getLogger(__name__)

_ACCEPTED = frozenset({100, 101, 102})
_RETRYABLE = frozenset({500, 501, 502})


@dataclass(frozen=True, slots=True)
class SentSms:
    message_id: str
    status: str          # the provider's word: "Success", "Queued" ...
    cost: str = ""


class AfricasTalkingSms:
    """One Africa's Talking account: ``send(to, text)`` -> ``SentSms``."""

    def __init__(self, username: str, api_key: str, api_url: str | None = None, sender_id: str | None = None,
                 timeout: tuple[float, float] = (2.0, 5.0)) -> None:
        self._service = SMSService(username, api_key)
        if api_url:
            self._service._baseUrl = api_url.rstrip("/")
        self._sender_id = sender_id or None
        self._timeout = timeout

    def send(self, to: str, text: str) -> SentSms:
        """Send ``text`` to one E.164 number. ``Rejected`` for good, ``BackendUnavailable`` for now."""
        try:
            answer = self._service.send(text, [to], sender_id=self._sender_id, timeout=self._timeout)
        except ValueError:  # the SDK's own check of the number, before anything is sent
            raise Rejected("invalid_number") from None
        except AfricasTalkingException as exc:
            log.warning("Africa's Talking refused an SMS to %s: %s", mask(to), str(exc)[:200])
            raise BackendUnavailable("sms provider error") from None
        except requests.RequestException as exc:
            log.warning("Africa's Talking unreachable for an SMS to %s: %s", mask(to), type(exc).__name__)
            raise BackendUnavailable("sms provider unreachable") from None
        return _recipient_status(answer, to)


def _recipient_status(answer: Any, to: str) -> SentSms:
    try:
        recipient = answer["SMSMessageData"]["Recipients"][0]
        code = int(recipient["statusCode"])
        status = str(recipient.get("status", ""))
    except (TypeError, KeyError, IndexError, ValueError):
        log.warning("Africa's Talking answered an SMS to %s with an unexpected body", mask(to))
        raise BackendUnavailable("malformed sms provider answer") from None
    if code in _ACCEPTED:
        return SentSms(str(recipient.get("messageId", "")), status, str(recipient.get("cost", "")))
    if code in _RETRYABLE:
        raise BackendUnavailable(f"sms provider status {code} {status}")
    raise Rejected(status or f"status_{code}")
