"""The menus' one rule for "this screen shows a secret" (a prepaid token, a one-time code), read by name.

A placeholder shows a secret when its field, the name before any ``.`` or ``[``, is ``token``, ``code`` or ends
in ``_token`` / ``_code`` (``{prepaid_token}``, ``{code!r}``). The runtime reads it so (``channels/reply_secrets.py``:
a WhatsApp reply of such a screen is kept the hour of a code, not the day of a bill summary, and never sent again by
SMS after it) and ``python -m menus lint`` holds the menus to it: a placeholder that shows a token or a code only
through an attribute (``{pay_item.token}``) is a secret the runtime cannot see, reported where it is written.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["hidden_secret", "names_secret"]

_SECRET_WORDS: Final = frozenset({"token", "code"})
_PARTS: Final = re.compile(r"[.\[\]]")


def _secret_word(part: str) -> bool:
    return part.rsplit("_", 1)[-1] in _SECRET_WORDS


def names_secret(name: str) -> bool:
    """Whether the placeholder ``name`` (``prepaid_token``, ``prepaid_token.value``) shows a secret: its field's name
    says so."""
    return _secret_word(_PARTS.split(name, 1)[0])


def hidden_secret(name: str) -> str | None:
    """The attribute of ``name`` that names a token or a code its field does not (``pay_item.token`` -> ``token``):
    a secret ``names_secret`` does not see; ``None`` otherwise."""
    if names_secret(name):
        return None
    return next((part for part in _PARTS.split(name)[1:] if part and _secret_word(part)), None)
