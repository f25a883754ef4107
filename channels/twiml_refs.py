"""The opaque reference that ties a TwiML reply's status callbacks to the reply's record in the outbox.

A reply given inline in the TwiML answer has no message id of Twilio's when it is given: Twilio creates the
outbound message after reading the answer. So each ``<Message>`` names, in its ``action`` (the URL Twilio posts
that message's status callbacks to; the SDK's ``statusCallback`` attribute is deprecated in its favour), a
reference of ours: ``?ref=<reply>.<part>``. The reply's part is 24 hex characters of an HMAC of the incoming
``MessageSid`` under a key only the product holds (the Twilio auth token), so it says nothing of the customer (no
number, no Twilio id), cannot be made up without the key, and is the same for every answer to that message (a
replayed ``MessageSid`` gets TwiML naming the same record). The outbox knows each part by ``twiml:<reply>.<part>``
(``part_id``), the id its status reports carry in place of Twilio's ``MessageSid``, which the product never saw.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final
from urllib.parse import urlencode

__all__ = ["QUERY", "action_url", "part_id", "part_ids", "read_ref", "reply_ref"]

QUERY: Final = "ref"
_PREFIX: Final = "twiml:"
_REF = re.compile(r"^[0-9a-f]{24}\.[0-9]{1,2}$")


def reply_ref(key: str, message_id: str) -> str:
    """The reference of the reply to the incoming message ``message_id`` (``key``: a secret of the product's)."""
    return hmac.new(key.encode(), b"twiml-reply:" + message_id.encode(), hashlib.sha256).hexdigest()[:24]


def action_url(status_url: str, ref: str, part: int) -> str:
    """Where Twilio posts the status of part ``part`` (from 0) of the reply ``ref``."""
    return f"{status_url}?{urlencode({QUERY: f'{ref}.{part}'})}"


def part_ids(ref: str, parts: int) -> list[str]:
    """The ids the outbox knows the ``parts`` messages of the reply ``ref`` by, in order."""
    return [part_id(f"{ref}.{part}") for part in range(parts)]


def part_id(value: str) -> str:
    """The outbox's id of a reply's part named ``<reply>.<part>`` in a callback's ``ref``."""
    return _PREFIX + value


def read_ref(value: str) -> str | None:
    """The part id a callback's ``ref`` names, or ``None`` when it is not one of ours (malformed)."""
    return part_id(value) if _REF.match(value) else None
