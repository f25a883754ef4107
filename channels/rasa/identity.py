"""Who the customer behind a Rasa conversation is: a number the Rasa front channel vouches for, signed.

A Rasa ``sender_id`` is only an address, and the Rasa server passes its channels' ``metadata``
through unchecked (its REST channel takes metadata from the end user). So the front channel that
verified the customer's phone (a one-time code, an operator header, a signed-in app) signs what it
verified, and the action server believes nothing else::

    "metadata": {"elecnet_identity": {"msisdn": "+221770000001", "expires": 1767225600,
                                      "sig": "<hex HMAC-SHA256(RASA_IDENTITY_SECRET, '+221770000001|<sender_id>|1767225600')>"}}

The signature binds the number to one ``sender_id`` (a claim copied into another conversation is
worthless) and expires. Without the secret, or without a valid claim, nobody is vouched for.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["IDENTITY_KEY", "IdentityVerifier", "sign_identity"]

IDENTITY_KEY: Final = "elecnet_identity"
_E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")
# A claim valid for longer than this is refused whatever it says: a leaked one does not live long.
MAX_CLAIM_SECONDS: Final = 24 * 3600


def _message(msisdn: str, sender_id: str, expires: int) -> bytes:
    return f"{msisdn}|{sender_id}|{expires}".encode()


def sign_identity(secret: str, msisdn: str, sender_id: str, expires: int) -> dict[str, object]:
    """The metadata claim a front channel attaches (what its signer computes; tests and tools use it)."""
    sig = hmac.new(secret.encode(), _message(msisdn, sender_id, expires), hashlib.sha256).hexdigest()
    return {"msisdn": msisdn, "expires": expires, "sig": sig}


@dataclass(frozen=True)
class IdentityVerifier:
    """Checks a claim against ``secret``; ``clock`` gives the current Unix time."""

    secret: str
    clock: Callable[[], float]

    def verified(self, metadata: object, sender_id: str) -> str | None:
        """The number vouched for in ``metadata`` for ``sender_id``, or ``None`` (never raises)."""
        if not self.secret or not isinstance(metadata, Mapping):
            return None
        claim = metadata.get(IDENTITY_KEY)
        if not isinstance(claim, Mapping):
            return None
        msisdn, expires, sig = claim.get("msisdn"), claim.get("expires"), claim.get("sig")
        if not (isinstance(msisdn, str) and _E164.match(msisdn) and isinstance(sig, str)
                and isinstance(expires, int) and not isinstance(expires, bool)):
            return None
        now = self.clock()
        if not now < expires <= now + MAX_CLAIM_SECONDS:
            return None
        expected = hmac.new(self.secret.encode(), _message(msisdn, sender_id, expires), hashlib.sha256).hexdigest()
        return msisdn if hmac.compare_digest(expected, sig.lower()) else None
