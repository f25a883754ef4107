"""A WhatsApp template's body parameter, written as WhatsApp accepts it whichever provider sends it.

WhatsApp refuses a template parameter that is empty or holds a new line, a tab or a run of spaces,
and Twilio refuses an empty or null content variable before sending (error 21656). So each parameter
is one short line: white space collapsed, ``-`` for nothing, cut at 1 024 characters (a template's
body is at most that long; Twilio takes variables up to 1 600).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_PARAM_CHARS", "template_param"]

MAX_PARAM_CHARS: Final = 1024


def template_param(text: str, limit: int = MAX_PARAM_CHARS) -> str:
    """``text`` as one template parameter: one line, never empty, at most ``limit`` characters."""
    return (" ".join(text.split()) or "-")[:limit]
