"""How long each one-time code the outbox carries is valid, read from where the product decides it.

A code that only works for a while is not worth sending late (the SMS provider was down): the worker
drops it, "its code expired" (``valid_minutes`` / ``expires_after`` in ``config/notifications.yaml``).
This module knows the source of each and tells the worker, at start-up, when the templates disagree,
so a changed setting cannot leave the outbox sending dead codes (or dropping live ones) unnoticed.

- ``pin_code`` (first PIN of a prepaid meter), ``link_code`` (linking an account): the code's hash lives
  in the conversation that asked for it, so the code works as long as that conversation stays idle: its
  channel's session time (``session_seconds``: 3 minutes on USSD, 5 on WhatsApp and SMS ...). The dialog
  writes those minutes in the payload (``expires_after: minutes``); the kind's ``valid_minutes`` is the
  USSD session's (``SESSION_TTL_SECONDS``), for a row whose payload does not say (queued by an older
  version during an upgrade).
- ``email_code``: staged with the address for ``EMAIL_CODE_MINUTES`` (``dialogs/preferences.py``).
- ``web_code`` carries its own minutes in the payload (``expires_after: minutes``): nothing to check.
"""

from __future__ import annotations

import math
from typing import Final

from channels.capabilities import SMS, WEB, WHATSAPP
from dialogs.preferences import EMAIL_CODE_MINUTES

from .notify import NotificationTemplates
from .settings import Settings

__all__ = ["CHATBOT_CHANNEL", "SESSION_CODE_KINDS", "code_validity", "session_seconds", "validity_problems"]

# Codes valid as long as the conversation that asked for them; the payload field saying its minutes.
SESSION_CODE_KINDS: Final = ("pin_code", "link_code")
SESSION_CODE_FIELD: Final = "minutes"
# The chatbot channel's name (channels/rasa; not imported: it would load rasa_sdk into every web worker).
CHATBOT_CHANNEL: Final = "rasa"


def session_seconds(settings: Settings) -> dict[str, int]:
    """How long a conversation may stay idle, per channel keyed by user: what each adapter declares to the
    engine. A channel not listed (USSD: the gateway's session) lives ``SESSION_TTL_SECONDS``."""
    return {SMS.name: settings.sms_session_idle_seconds, WHATSAPP.name: settings.whatsapp_session_idle_seconds,
            WEB.name: settings.web_idle_seconds, CHATBOT_CHANNEL: settings.rasa_session_idle_seconds}


def code_validity(settings: Settings) -> dict[str, tuple[int, str]]:
    """Per kind: the minutes its code is valid (a session code: when its payload does not say), and where
    that comes from (for the start-up message)."""
    session = math.ceil(settings.session_ttl_seconds / 60)
    where = (f"SESSION_TTL_SECONDS={settings.session_ttl_seconds}: a USSD session's, for a code whose payload "
             "does not say")
    return {**{kind: (session, where) for kind in SESSION_CODE_KINDS},
            "email_code": (EMAIL_CODE_MINUTES, "EMAIL_CODE_MINUTES in dialogs/preferences.py")}


def validity_problems(templates: NotificationTemplates, settings: Settings) -> list[str]:
    """A problem per code kind whose ``valid_minutes`` is not its code's real validity, or whose validity
    the payload says (a session code) but the template does not read there."""
    problems = []
    for kind, (minutes, where) in code_validity(settings).items():
        template = templates.kinds.get(kind)
        if template is not None and template.valid_minutes != minutes:
            said = "has no valid_minutes" if template.valid_minutes is None else \
                f"says valid_minutes: {template.valid_minutes}"
            problems.append(f"notification '{kind}' {said}, but its code is valid {minutes} minutes ({where}); "
                            f"write valid_minutes: {minutes}")
    for kind in SESSION_CODE_KINDS:
        template = templates.kinds.get(kind)
        if template is not None and template.expires_after != SESSION_CODE_FIELD:
            problems.append(f"notification '{kind}': its code is valid as long as the conversation that asked "
                            f"for it, which the payload says; write expires_after: {SESSION_CODE_FIELD}")
    return problems
