"""Notifications on WhatsApp through Meta's Cloud API: the outbox's messages from our business number.

A notification is either free text (``type: text``), which Meta delivers only inside the 24-hour
customer-service window (the customer wrote to us in the last 24 hours), or an approved template
(``type: template``: its name, a language code and the body's ``{{1}}``, ``{{2}}``... parameters),
which Meta delivers at any time. Outside the window Meta refuses free text with code ``131047``
(re-engagement message): ``Rejected`` like any refusal for good, so the caller sends it another way.

The Graph API calls, retries and error mapping are ``MetaWhatsApp``'s (``Rejected`` for good,
``BackendUnavailable`` for now); this module only says which of our numbers sends
(``phone_number_id``; a reply: the one the customer wrote to) and writes the two kinds of message. Recipients are E.164 numbers
(``+221...``); Meta wants the digits (``wa_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from dialogs.backends import Rejected

from .meta_whatsapp import MetaWhatsApp, SentMessage
from .template_params import template_param

__all__ = ["MAX_TEXT_CHARS", "OUTSIDE_WINDOW", "MetaWhatsAppNotifier"]

MAX_TEXT_CHARS: Final = 4096
OUTSIDE_WINDOW: Final = "131047"    # Meta's code: free text outside the 24-hour customer-service window


class MetaWhatsAppNotifier:
    """``send(to, text)``, ``send_message(to, graph_message)`` and ``send_template(to, name, language, params)``
    from ``phone_number_id`` (a reply: ``send_message(..., phone_number_id=...)``, our number the customer wrote
    to). With neither, a message is ``Rejected`` before any request."""

    def __init__(self, client: MetaWhatsApp, phone_number_id: str) -> None:
        self._client, self._number = client, phone_number_id

    def send(self, to: str, text: str) -> SentMessage:
        """One text message; at most ``MAX_TEXT_CHARS`` (Meta refuses a longer one: the caller splits it)."""
        return self.send_message(to, {"type": "text", "text": {"body": text, "preview_url": False}})

    def send_message(self, to: str, message: dict[str, Any], phone_number_id: str = "") -> SentMessage:
        """One message already laid out as the Graph API takes it (text, reply buttons, a list), without ``to``,
        from ``phone_number_id`` or our default number."""
        return self._client.send(self._sender(phone_number_id), _wa_id(to), message)

    def send_template(self, to: str, name: str, language: str, params: Sequence[str] = ()) -> SentMessage:
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if params:
            # Meta refuses an empty parameter or one with a new line or a tab: each is one short line.
            template["components"] = [{"type": "body", "parameters": [
                {"type": "text", "text": template_param(p)} for p in params]}]
        return self._client.send(self._sender(""), _wa_id(to), {"type": "template", "template": template})

    def _sender(self, phone_number_id: str) -> str:
        number = phone_number_id or self._number
        if not number:
            raise Rejected("meta_no_phone_number_id")
        return number


def _wa_id(number: str) -> str:
    return number.removeprefix("whatsapp:").lstrip("+")
