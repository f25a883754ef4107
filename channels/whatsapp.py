"""What the WhatsApp channel is, whichever provider carries it (Twilio, Meta's Cloud API).

One channel name, ``whatsapp``, so that its keywords (``entry_points.whatsapp`` in the menus) and
its screens are the same through either provider: 4 096 characters a message, any Unicode, the
options numbered (Meta's adapter turns them into buttons or a list where they fit), Back and Home
listed, and the navigation words a customer types instead of the keys. A conversation is keyed by
the sender and ends after ``idle_seconds`` without a message, as on SMS.

Helpers shared by both adapters: how a typed message is cleaned, how an option travels as a
button id and back, and the bilingual notices for what the channel cannot read.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from menus.schema import NAVIGATION_KEYS

from .capabilities import WHATSAPP, WHATSAPP_MAX_TEXT_CHARS, WHATSAPP_NAVIGATION_WORDS

__all__ = ["CAPABILITIES", "CHANNEL", "DEFAULT_IDLE_SECONDS", "MAX_INPUT_CHARS", "NOT_READABLE",
           "TEXT_ONLY", "UNAVAILABLE", "clean_text", "key_of", "option_id"]

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
