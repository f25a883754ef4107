"""Who the customer behind a Rasa conversation is: a number the Rasa front channel vouches for, signed.

A Rasa ``sender_id`` is only an address, and the Rasa server passes its channels' ``metadata``
through unchecked (its REST channel takes metadata from the end user). So the front channel that
verified the customer's phone (a one-time code, an operator header, a signed-in app) signs what it
verified, and the action server believes nothing else::

    "metadata": {"elecnet_identity": {"msisdn": "+221770000001", "expires": 1767225600,
                                      "sig": "<hex HMAC-SHA256(RASA_IDENTITY_SECRET, '+221770000001|<sender_id>|1767225600')>"}}

The signature binds the number to one ``sender_id`` (a claim copied into another conversation is
worthless) and expires. Without the secret, or without a valid claim, nobody is vouched for.

A front channel that knows the user's network address (the web chat's own server sees the browser's)
may sign it likewise, for the in-chat sign-in to count code requests per address rather than per
conversation id (which the chat client chooses)::

    "metadata": {"elecnet_client": {"address": "203.0.113.7", "expires": 1767225600,
                                    "sig": "<hex HMAC-SHA256(RASA_IDENTITY_SECRET, 'client|203.0.113.7|<sender_id>|1767225600')>"}}

An address that is not signed, or not a valid IPv4/IPv6 address, is ignored: the end user writes the
metadata the Rasa server passes on, so an unsigned one would be a key the attacker picks.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["CLIENT_KEY", "IDENTITY_KEY", "IdentityVerifier", "sign_client", "sign_identity"]

IDENTITY_KEY: Final = "elecnet_identity"
CLIENT_KEY: Final = "elecnet_client"
_E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")
# A claim valid for longer than this is refused whatever it says: a leaked one does not live long.
MAX_CLAIM_SECONDS: Final = 24 * 3600


def _message(msisdn: str, sender_id: str, expires: int) -> bytes:
    return f"{msisdn}|{sender_id}|{expires}".encode()


def _client_message(address: str, sender_id: str, expires: int) -> bytes:
    # Its own prefix: a client claim never reads as a number's (an E.164 number has no "client|").
    return f"client|{address}|{sender_id}|{expires}".encode()


def sign_identity(secret: str, msisdn: str, sender_id: str, expires: int) -> dict[str, object]:
    """The metadata claim a front channel attaches (what its signer computes; tests and tools use it)."""
    sig = hmac.new(secret.encode(), _message(msisdn, sender_id, expires), hashlib.sha256).hexdigest()
    return {"msisdn": msisdn, "expires": expires, "sig": sig}


def sign_client(secret: str, address: str, sender_id: str, expires: int) -> dict[str, object]:
    """The metadata claim of the user's network address (``CLIENT_KEY``) a front channel attaches."""
    sig = hmac.new(secret.encode(), _client_message(address, sender_id, expires), hashlib.sha256).hexdigest()
    return {"address": address, "expires": expires, "sig": sig}


@dataclass(frozen=True)
class IdentityVerifier:
    """Checks a claim against ``secret``; ``clock`` gives the current Unix time."""

    secret: str
    clock: Callable[[], float]

    def verified(self, metadata: object, sender_id: str) -> str | None:
        """The number vouched for in ``metadata`` for ``sender_id``, or ``None`` (never raises)."""
        claim = self._claim(metadata, IDENTITY_KEY, "msisdn")
        if claim is None or not _E164.match(claim[0]):
            return None
        msisdn, expires, sig = claim
        return msisdn if self._signed(_message(msisdn, sender_id, expires), sig) else None

    def client(self, metadata: object, sender_id: str) -> str | None:
        """The user's network address the front channel signed in ``metadata`` for ``sender_id`` (written
        as ``ipaddress`` writes it), or ``None`` (never raises)."""
        claim = self._claim(metadata, CLIENT_KEY, "address")
        if claim is None or len(claim[0]) > 45:
            return None
        address, expires, sig = claim
        try:
            written = str(ipaddress.ip_address(address))
        except ValueError:
            return None
        return written if self._signed(_client_message(address, sender_id, expires), sig) else None

    def _claim(self, metadata: object, key: str, field: str) -> tuple[str, int, str] | None:
        """``(value, expires, sig)`` of the claim under ``key`` when well formed and not expired."""
        if not self.secret or not isinstance(metadata, Mapping):
            return None
        claim = metadata.get(key)
        if not isinstance(claim, Mapping):
            return None
        value, expires, sig = claim.get(field), claim.get("expires"), claim.get("sig")
        if not (isinstance(value, str) and isinstance(sig, str)
                and isinstance(expires, int) and not isinstance(expires, bool)):
            return None
        now = self.clock()
        if not now < expires <= now + MAX_CLAIM_SECONDS:
            return None
        return value, expires, sig

    def _signed(self, message: bytes, sig: str) -> bool:
        expected = hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, sig.lower())
