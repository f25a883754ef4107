"""The replay record's key: an HMAC of the caller and the hop under a server key.

USSD sends the whole input history in every hop, PINs included, and the engine keeps a
digest of the last hop to answer a replayed request from its record. An unsalted hash
of that text gives the PIN back after 10 000 guesses; an HMAC under a key that lives only
in the server's environment does not. The caller is part of the message, so the record of
one number's hop never matches another number's identical request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["HopDigest"]

# The server key may serve other purposes (pseudonymous ids): derive a key of our own from it.
_PURPOSE = b"engine/hop-digest/v1"


class HopDigest:
    """``digest(user_id, hop_id)``: 32 hex characters, the same for the same caller, hop and key."""

    __slots__ = ("_key",)

    def __init__(self, server_key: bytes | None = None) -> None:
        # Without a key (the engine embedded in a test or a script), a random one for this
        # instance: replays are still recognised within it, and nothing is guessable.
        root = server_key if server_key else secrets.token_bytes(32)
        self._key = hmac.new(root, _PURPOSE, hashlib.sha256).digest()

    def digest(self, user_id: str, hop_id: str) -> str:
        message = f"{user_id}\x1f{hop_id}".encode("utf-8", "replace")
        return hmac.digest(self._key, message, "sha256").hex()[:32]   # one-shot: the same digest, in C
