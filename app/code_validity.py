"""How long each one-time code the outbox carries is valid, read from where the product decides it.

A code that only works for a while is not worth sending late (the SMS provider was down): the worker
drops it, "its code expired" (``valid_minutes`` / ``expires_after`` in ``config/notifications.yaml``).
The templates say a fixed number of minutes; this module knows the source of each and tells the worker,
at start-up, when the two disagree, so a changed setting cannot leave the outbox sending dead codes (or
dropping live ones) without anyone noticing.

- ``pin_code`` (first PIN of a prepaid meter), ``link_code`` (linking an account): the code's hash lives
  in the session that asked for it, so the code works as long as that session: the engine's idle TTL,
  ``SESSION_TTL_SECONDS`` (a USSD session; the customer waits there for the SMS).
- ``email_code``: staged with the address for ``EMAIL_CODE_MINUTES`` (``dialogs/preferences.py``).
- ``web_code`` carries its own minutes in the payload (``expires_after: minutes``): nothing to check.
"""

from __future__ import annotations

import math

from dialogs.preferences import EMAIL_CODE_MINUTES

from .notify import NotificationTemplates
from .settings import Settings

__all__ = ["code_validity", "validity_problems"]


def code_validity(settings: Settings) -> dict[str, tuple[int, str]]:
    """Per kind: the minutes its code is valid, and where that comes from (for the start-up message)."""
    session = math.ceil(settings.session_ttl_seconds / 60)
    where = f"SESSION_TTL_SECONDS={settings.session_ttl_seconds}: the session it is typed in"
    return {"pin_code": (session, where), "link_code": (session, where),
            "email_code": (EMAIL_CODE_MINUTES, "EMAIL_CODE_MINUTES in dialogs/preferences.py")}


def validity_problems(templates: NotificationTemplates, settings: Settings) -> list[str]:
    """A problem per code kind whose ``valid_minutes`` is not its code's real validity."""
    problems = []
    for kind, (minutes, where) in code_validity(settings).items():
        template = templates.kinds.get(kind)
        if template is not None and template.valid_minutes != minutes:
            said = "has no valid_minutes" if template.valid_minutes is None else \
                f"says valid_minutes: {template.valid_minutes}"
            problems.append(f"notification '{kind}' {said}, but its code is valid {minutes} minutes ({where}); "
                            f"write valid_minutes: {minutes}")
    return problems
