"""One-time codes as they are kept (link confirmation and undo, first-PIN proof, e-mail confirmation, web
sign-in): six digits from the system's CSPRNG, stored only as a salted scrypt hash, checked in constant time.

Shared by the dialog steps and the web sign-in, so every code in the product is made and kept one way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

__all__ = ["code_matches", "hash_code", "new_code"]


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**6):06d}"


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
