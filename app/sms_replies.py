"""SMS replies the provider could not take at once, queued in the notification outbox.

The SMS channel (``channels.sms_handover``) hands such a reply here; it becomes an outbox row of kind
``sms_reply`` (``config/notifications.yaml``: bound to the number's SMS, urgent, sent even after STOP
since the customer just wrote to us), which the worker sends with the outbox's retries, backoff and
delivery status, shown to agents like any other message. The text is sealed in the row (payload field
``reply``, ``storage/outbox_seal.py``): a reply can show a prepaid token, and the adapter cannot tell
which one does. One row per incoming message id (the dedupe key), however often the provider retries it.

An incoming message kept while the engine could not run it (``channels/sms_inbox.py``) and run by the worker
more than 30 minutes later is not run: it gets an ``sms_reply_late`` instead, a short apology asking the
customer to send it again (its date, never its text: it may hold a PIN).

A WhatsApp message kept likewise is answered the same way with the WhatsApp kinds (``OutboxReplies.whatsapp``):
``whatsapp_reply`` and ``whatsapp_reply_late``, sent to the number's WhatsApp (the customer just wrote: the
24-hour window is open), and by SMS when WhatsApp refuses it (``channel: whatsapp`` in the notifications). A
``whatsapp_reply`` keeps the screen as the adapter of the provider the message came through lays it out (its
``messages``: Twilio's bodies of at most 1 600 characters, Meta's buttons or list), so the late answer is the
one the webhook would have given; the text stays for SMS. A ``whatsapp_reply`` and a ``whatsapp_reply_late`` also
keep the provider the message came through and our number it was written to (``REPLY_PROVIDER``, ``REPLY_FROM``):
the worker sends them back that way, whichever provider sends the notifications (``app/notify.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Protocol, runtime_checkable

from dialogs.stores import Outbox

from .notify import REPLY_FROM, REPLY_MESSAGES, REPLY_PLAIN, REPLY_PROVIDER
from .storage.delivery import ONLY_CHANNEL, SMS_PARTS

__all__ = ["KIND", "LATE_KIND", "WHATSAPP_KIND", "WHATSAPP_LATE_KIND", "OutboxReplies", "SentOutbox", "reply_keys"]

KIND: Final = "sms_reply"
LATE_KIND: Final = "sms_reply_late"
WHATSAPP_KIND: Final = "whatsapp_reply"
WHATSAPP_LATE_KIND: Final = "whatsapp_reply_late"
# The outbox's dedupe keys hold 120 characters; a provider's message id may hold 128.
_LONGEST_ID: Final = 100


@runtime_checkable
class SentOutbox(Outbox, Protocol):
    def add_sent(self, *, kind: str, msisdn: str, language: str, payload: dict[str, Any], dedupe_key: str,
                 channel: str, message_ids: list[str]) -> bool:
        """Record a message its channel sent at once (``app.storage.alerts.SqlOutbox.add_sent``)."""


class OutboxReplies:
    """``channels.sms_handover.ReplyOutbox`` on the notification outbox: replies of kind ``kind`` (apologies of
    ``late_kind``) first sent on ``channel``."""

    def __init__(self, outbox: Outbox, kind: str = KIND, late_kind: str = LATE_KIND, channel: str = "sms") -> None:
        self._outbox, self._kind, self._late_kind, self._channel = outbox, kind, late_kind, channel

    @classmethod
    def whatsapp(cls, outbox: Outbox) -> OutboxReplies:
        """The replies to WhatsApp messages the worker ran (``whatsapp_reply``, ``whatsapp_reply_late``)."""
        return cls(outbox, WHATSAPP_KIND, WHATSAPP_LATE_KIND, "whatsapp")

    def queue_reply(self, to: str, text: str, *, language: str, message_id: str, messages: Sequence[Any] = (),
                    provider: str = "", from_number: str = "", plain: bool = False) -> bool:
        """``channels.sms_handover.ReplyOutbox``: ``text`` (what SMS sends), and ``messages``, the reply as
        ``provider``'s adapter lays it out (what that provider's sender sends), both sealed; on WhatsApp, the
        provider and number it goes back through. ``plain``: it shows no code or token (``REPLY_PLAIN``)."""
        return self._outbox.add(kind=self._kind, msisdn=to, language=language,
                                payload=self._payload(text, messages, provider, from_number, plain),
                                dedupe_key=self._key(message_id), channel=self._channel)

    def record_sent_reply(self, to: str, *, language: str, message_id: str, text: str, messages: Sequence[Any],
                          ids: Sequence[str], provider: str, from_number: str, plain: bool = False) -> bool:
        """``channels.whatsapp.WebhookReplies``: a reply its webhook sent, as the sent row of the reply the worker
        would have queued (same kind, dedupe key and payload, sealed), each part's id known to its reports."""
        if not isinstance(self._outbox, SentOutbox):
            raise TypeError("this outbox cannot record a message sent at once")
        return self._outbox.add_sent(kind=self._kind, msisdn=to, language=language,
                                     payload=self._payload(text, messages, provider, from_number, plain),
                                     dedupe_key=self._key(message_id), channel=self._channel, message_ids=list(ids))

    def queue_rest_by_sms(self, to: str, *, language: str, message_id: str, text: str, messages: Sequence[Any],
                          parts: Sequence[int], provider: str, from_number: str, reason: str,
                          plain: bool = False) -> bool:
        """``channels.whatsapp.WebhookReplies``: a reply its webhook could send in part only, queued as the outbox
        queues one a provider reported refused in part: for SMS only (``ONLY_CHANNEL``), the parts ``SMS_PARTS``,
        which the dispatcher opens by "(suite)" from a later part on. Under the reply's own dedupe key."""
        payload = self._payload(text, messages, provider, from_number, plain) | {ONLY_CHANNEL: "sms",
                                                                                 SMS_PARTS: list(parts)}
        return self._outbox.add(kind=self._kind, msisdn=to, language=language, payload=payload,
                                dedupe_key=self._key(message_id), channel="sms", note=reason)

    def _payload(self, text: str, messages: Sequence[Any], provider: str, from_number: str,
                 plain: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"reply": text, **self._way_back(provider, from_number)}
        if messages:
            payload |= {REPLY_MESSAGES: list(messages), REPLY_PROVIDER: provider}
        if plain:
            payload[REPLY_PLAIN] = True
        return payload

    def _key(self, message_id: str) -> str:
        return f"{self._kind}:{_short(message_id)}"

    def queue_apology(self, to: str, *, language: str, message_id: str, received_at: datetime, provider: str = "",
                      from_number: str = "") -> bool:
        """``channels.sms_inbox.LateApology``: the apology for a message kept too long to be run, back the way the
        message came on WhatsApp."""
        return self._outbox.add(kind=self._late_kind, msisdn=to, language=language,
                                payload={"received_at": received_at.isoformat(),
                                         **self._way_back(provider, from_number)},
                                dedupe_key=f"{self._late_kind}:{_short(message_id)}", channel=self._channel)

    def _way_back(self, provider: str, from_number: str) -> dict[str, str]:
        """The payload fields that send a WhatsApp answer back through the provider and number the customer wrote
        to (SMS has one provider and sends from its own sender id: none)."""
        if self._channel != "whatsapp" or not provider:
            return {}
        return {REPLY_PROVIDER: provider, **({REPLY_FROM: from_number} if from_number else {})}


def _short(message_id: str) -> str:
    """The message id as a dedupe key holds it."""
    if len(message_id) > _LONGEST_ID:
        return hashlib.sha256(message_id.encode()).hexdigest()[:40]
    return message_id


def reply_keys(message_id: str) -> tuple[str, ...]:
    """The outbox dedupe keys a reply to the incoming message ``message_id`` is queued under (SMS, WhatsApp)."""
    return tuple(f"{kind}:{_short(message_id)}" for kind in (KIND, WHATSAPP_KIND))
