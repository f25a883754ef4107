"""SMS replies the provider could not take at once, queued in the notification outbox.

The SMS channel (``channels.sms_handover``) hands such a reply here; it becomes an outbox row of kind
``sms_reply`` (``config/notifications.yaml``: bound to the number's SMS, urgent, sent even after STOP
since the customer just wrote to us), which the worker sends with the outbox's retries, backoff and
delivery status, shown to agents like any other message. The text is sealed in the row (payload field
``reply``, ``storage/outbox_seal.py``): a reply can show a prepaid token, and the adapter cannot tell
which one does. One row per incoming message id (the dedupe key), however often the provider retries it.
"""

from __future__ import annotations

import hashlib
from typing import Final

from dialogs.stores import Outbox

__all__ = ["KIND", "OutboxReplies"]

KIND: Final = "sms_reply"
# The outbox's dedupe keys hold 120 characters; a provider's message id may hold 128.
_LONGEST_ID: Final = 100


class OutboxReplies:
    """``channels.sms_handover.ReplyOutbox`` on the notification outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def queue_reply(self, to: str, text: str, *, language: str, message_id: str) -> bool:
        if len(message_id) > _LONGEST_ID:
            message_id = hashlib.sha256(message_id.encode()).hexdigest()[:40]
        return self._outbox.add(kind=KIND, msisdn=to, language=language, payload={"reply": text},
                                dedupe_key=f"{KIND}:{message_id}", channel="sms")
