"""E-mail addresses as customers type them on a keypad or in an SMS: checked, normalised, masked.

Deliberately plain: one ``@``, a dotted domain, no spaces, at most 254 characters; the domain is
lower-cased (the local part belongs to the customer's provider and is kept as typed). Whether the
address is real and theirs is proved by the code sent to it, not by a pattern.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["EMAIL_PATTERN", "mask_email", "normalise_email"]

# The menus' input validator and SMS keyword use the same pattern (config/menus).
EMAIL_PATTERN: Final = r"[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
_EMAIL: Final = re.compile(EMAIL_PATTERN)


def normalise_email(text: str) -> str | None:
    """The address in ``text`` (lower-case domain), or None when it is not one."""
    candidate = text.strip()
    if len(candidate) > 254 or not _EMAIL.fullmatch(candidate):
        return None
    local, _, domain = candidate.rpartition("@")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    return f"{local}@{domain.lower()}"


def mask_email(address: str | None) -> str:
    """``awa.diop@exemple.sn`` -> ``a***@exemple.sn``: the customer recognises it, a log reader cannot."""
    if not address or "@" not in address:
        return "-"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
