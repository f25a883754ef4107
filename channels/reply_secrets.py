"""Whether a reply shows a secret (a prepaid token, a one-time code), read from the screen's node in the menus.

A WhatsApp reply the outbox keeps is sealed whole (a screen may show a token), and kept after its send so that a
late "outside the 24-hour window" still brings it by SMS. How long it is worth keeping depends on what it shows: a
code or token is stale an hour on (``OUTBOX_KEEP_SENT_SECRETS_MINUTES``: re-sent later, it would be refused where
it is typed, and an old code is one more copy of a credential about), while a bill summary is still what the
customer asked for, dated, and is owed to them (``app/notify.py``, ``REPLY_PLAIN``). The menus say which is which:
a screen shows a secret when a text of its node names a placeholder ``*_token``, ``*_code``, ``token`` or ``code``
(``Code: {prepaid_token}``; the rule is ``menus/secrets.py``'s, which ``python -m menus lint`` holds the menus to). A
reply whose node cannot be found counts as showing one.
"""

from __future__ import annotations

from typing import Any

from engine import Screen
from engine.formatting import placeholders
from menus.secrets import names_secret

__all__ = ["shows_secret"]

# Per menus object and node: read once (a node's texts do not change while its menus are loaded). The menus object
# is held with its answer, so that its id is not another's while the entry stands.
_known: dict[tuple[int, str], tuple[Any, bool]] = {}


def _texts(value: Any) -> list[str]:
    """Every string inside a node's fields (its texts in each language, error lines, option labels)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _texts(item)]
    return []


def shows_secret(menus: Any, screen: Screen | None) -> bool:
    """Whether ``screen`` (of the flows in ``menus``, ``engine.flows.menus``) may show a token or a code."""
    if screen is None:
        return True
    key = (id(menus), screen.node)
    known = _known.get(key)
    if known is not None:
        return known[1]
    nodes = [flow.nodes[screen.node] for flow in menus.flows.values() if screen.node in flow.nodes]
    found = not nodes or any(names_secret(name) for node in nodes for text in _texts(node.model_dump())
                             for name, _ in placeholders(text))
    if len(_known) > 10_000:     # menus reloaded many times: start again rather than grow
        _known.clear()
    _known[key] = (menus, found)
    return found
