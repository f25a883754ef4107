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
_BLOCK = 64   # SHA-256's block; the derived key (32 bytes) fits in one


class HopDigest:
    """``digest(user_id, hop_id)``: 32 hex characters, the same for the same caller, hop and key."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, server_key: bytes | None = None) -> None:
        # Without a key (the engine embedded in a test or a script), a random one for this
        # instance: replays are still recognised within it, and nothing is guessable.
        root = server_key if server_key else secrets.token_bytes(32)
        key = hmac.new(root, _PURPOSE, hashlib.sha256).digest()
        # HMAC-SHA256 (RFC 2104) with its two keyed states made once: each hop copies them. The same
        # digest as ``hmac.digest``, for a third of its time (which looks SHA-256 up in OpenSSL on every call).
        block = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, user_id: str, hop_id: str) -> str:
        inner = self._inner.copy()
        inner.update(f"{user_id}\x1f{hop_id}".encode("utf-8", "replace"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:32]
