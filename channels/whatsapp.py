"""What the WhatsApp channel is, whichever provider carries it (Twilio, Meta's Cloud API).

One channel name, ``whatsapp``, so that its keywords (``entry_points.whatsapp`` in the menus) and
its screens are the same through either provider: 4 096 characters a message, any Unicode, the
options numbered (Meta's adapter turns them into buttons or a list where they fit), Back and Home
listed, and the navigation words a customer types instead of the keys. A conversation is keyed by
the sender and ends after ``idle_seconds`` without a message, as on SMS.

Helpers shared by both adapters: how a typed message is cleaned, how an option travels as a
button id and back, the bilingual notices for what the channel cannot read, and the note each incoming
message leaves of WhatsApp's 24-hour customer-service window (``Windows``, ``note_window``), which the
worker reads to send a notification as free text rather than as a template Meta bills.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from engine.masking import mask
from menus.schema import NAVIGATION_KEYS

from .answer_ledger import DurableAnswers, record_answered
from .capabilities import WHATSAPP, WHATSAPP_MAX_TEXT_CHARS, WHATSAPP_NAVIGATION_WORDS

__all__ = ["CAPABILITIES", "CHANNEL", "DEFAULT_IDLE_SECONDS", "MAX_INPUT_CHARS", "NOT_READABLE",
           "TEXT_ONLY", "UNAVAILABLE", "WebhookReplies", "Windows", "clean_text", "keep_sent_reply", "key_of", "note_window",
           "option_id"]

log = logging.getLogger("channels.whatsapp")

CHANNEL: Final = WHATSAPP.name
MAX_TEXT_CHARS: Final = WHATSAPP_MAX_TEXT_CHARS
# WhatsApp itself refuses longer text messages: a longer "message" is not from WhatsApp.
MAX_INPUT_CHARS: Final = 4096
DEFAULT_IDLE_SECONDS: Final = 300
NAVIGATION_WORDS: Final = WHATSAPP_NAVIGATION_WORDS
CAPABILITIES: Final = WHATSAPP  # channels.capabilities

NOT_READABLE: Final = ("Désolé, nous n'avons pas pu lire votre message. Écrivez MENU pour recommencer. / "
                       "Sorry, we could not read your message. Write MENU to start again.")
UNAVAILABLE: Final = ("Désolé, un incident technique nous empêche de répondre. Renvoyez votre message dans quelques "
                      "minutes. / Sorry, a technical problem keeps us from answering. Please send your message again "
                      "in a few minutes.")
TEXT_ONLY: Final = ("Merci de répondre par écrit (un numéro du menu, ou MENU). / "
                    "Please answer in writing (a number from the menu, or MENU).")

_OPTION_ID = re.compile(r"^opt:([0-9]{1,3})$")


def clean_text(text: str) -> str:
    """One message as one line of input: control and format characters become spaces."""
    return " ".join("".join(c if unicodedata.category(c)[0] != "C" else " " for c in text).split())


def option_id(key: str) -> str:
    """The id a button or list row carries for an option key (``1`` -> ``opt:1``, ``00`` -> ``opt:00``)."""
    return f"opt:{key}"


def key_of(button_id: str, title: str) -> str:
    """What a tapped button or list row means as typed input: its option key; a button we did not
    make (an old template's payload) counts as its title typed."""
    found = _OPTION_ID.match(button_id or "")
    if found and (found.group(1) in NAVIGATION_KEYS or found.group(1).isdigit()):
        return found.group(1)
    return clean_text(title or button_id or "")[:MAX_INPUT_CHARS]


class Windows(Protocol):
    def saw(self, msisdn: str, provider: str, at: datetime | None = None, number: str = "") -> None:
        """The customer ``msisdn`` (E.164) wrote to our business number ``number`` (Twilio: E.164; Meta: the phone
        number id) at ``provider`` at ``at`` (default: now): their 24-hour window with that number opens again.
        Raises when it cannot be kept (the database down)."""


class WebhookReplies(Protocol):
    """The durable record of the replies a WhatsApp webhook sends itself (the outbox's rows, ``app/sms_replies.py``)."""

    def record_sent_reply(self, to: str, *, language: str, message_id: str, text: str, messages: Sequence[Any],
                          ids: Sequence[str], provider: str, from_number: str, plain: bool = False) -> bool:
        """Record the reply to ``message_id`` (``text``, laid out by ``provider``'s adapter as ``messages``, which
        the provider took as ``ids``) as sent to ``to`` (E.164) from our ``from_number``: the database then knows
        the message answered, and a status saying a part was refused (outside the 24-hour window) sends the parts
        the customer did not get by SMS, as for any reply the worker sent (``plain``: it shows no code or token, so
        also after a code's bound). ``False`` when recorded already. Raises when it cannot be recorded (the database
        down)."""

    def queue_rest_by_sms(self, to: str, *, language: str, message_id: str, text: str, messages: Sequence[Any],
                          parts: Sequence[int], provider: str, from_number: str, reason: str,
                          plain: bool = False) -> bool:
        """Queue for SMS the parts ``parts`` (numbered from 0) of the reply to ``message_id``, WhatsApp having
        refused the first of them for good at once: SMS brings those only (from a later part: said to continue,
        "(suite)"), ``reason`` kept for agents. Once per message id (``False`` when queued already). Raises when it
        cannot be queued (the database down)."""


def keep_sent_reply(replies: WebhookReplies | None, answers: DurableAnswers | None, message_id: str, *, to: str,
                    language: str, text: str, messages: Sequence[Any], ids: Sequence[str], provider: str,
                    from_number: str, plain: bool) -> None:
    """Keep in the database the reply a webhook gave itself, once it has gone (``replies``; without them, or with
    no id for every message, that the message was answered: ``answers``); a failure is logged, never the
    webhook's: the customer has the reply already."""
    if replies is None or not ids or len(ids) != len(messages):
        record_answered(answers, message_id, channel=CHANNEL)
        return
    try:
        replies.record_sent_reply(to, language=language, message_id=message_id, text=text, messages=messages,
                                  ids=ids, provider=provider, from_number=from_number, plain=plain)
    except Exception as exc:  # noqa: BLE001 - the database down: the customer has the reply already
        log.warning("whatsapp reply to %s given, not recorded: %s", mask(to), type(exc).__name__)
        record_answered(answers, message_id, channel=CHANNEL)


def note_window(windows: Windows | None, msisdn: str, provider: str, at: datetime | None = None,
                number: str = "") -> None:
    """Note that the customer wrote; a failure is logged, never the webhook's: the customer's answer does not
    depend on it (a window not noted only means a template where free text could have gone)."""
    if windows is None or not msisdn:
        return
    try:
        windows.saw(msisdn, provider, at, number)
    except Exception as exc:  # noqa: BLE001 - the database unreachable or refusing: the answer still goes
        log.warning("whatsapp window of %s not noted: %s", mask(msisdn), type(exc).__name__)
