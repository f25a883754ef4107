"""One-time codes as they are kept (link confirmation and undo, first-PIN proof, e-mail confirmation, web
sign-in): six digits from the system's CSPRNG, stored only as a salted scrypt hash, checked in constant time.

Shared by the dialog steps and the web sign-in, so every code in the product is made and kept one way.

A code a conversation keeps (its hash in the session) while its message goes through the outbox is
``derived_code`` of the message's dedupe key instead: the hop that queued it may run again (its session's save
failed after the step ran), and the outbox then queues nothing new, so the code must come out the same or the
customer would hold a code the conversation no longer accepts. Under a server key (``code_key``, from
``SECRET_KEY``) it is as unpredictable as a random one to whoever lacks the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

__all__ = ["code_key", "code_matches", "derived_code", "hash_code", "new_code"]


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**6):06d}"


def derived_code(key: bytes, name: str) -> str:
    """Six digits that ``name`` (the dedupe key of the message carrying the code) always gives under ``key``."""
    digest = hmac.new(key, name.encode(), hashlib.sha256).digest()
    # 256 bits modulo 10**6: the bias is far below one in 10**60.
    return f"{int.from_bytes(digest, 'big') % 10**6:06d}"


def code_key(secret_key: str) -> bytes:
    """The key ``derived_code`` uses: its own HMAC of the server key (no other HMAC replays as a code), or a
    random one for this process when there is no server key."""
    if not secret_key:
        return secrets.token_bytes(32)
    return hmac.new(secret_key.encode(), b"elecnet one-time codes v1", hashlib.sha256).digest()


def hash_code(code: str, salt: bytes | None = None) -> str:
    """``salt$digest``, both base64; scrypt so a leaked hash does not give the code away cheaply."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def code_matches(code: str, stored: str) -> bool:
    """Whether ``code`` is the one ``stored`` was made from (constant-time comparison)."""
    try:
        salt, _ = stored.split("$")
        return hmac.compare_digest(hash_code(code, base64.b64decode(salt)), stored)
    except (ValueError, TypeError):
        return False
