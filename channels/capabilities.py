"""What each of the product's channels can show: USSD, SMS, WhatsApp and the customer web page.

Each adapter answers ``capabilities`` with its constant from here. The menu linter
(``python -m menus lint``) measures every screen against the same four without importing the
adapters, and with them Flask, Redis and the engine's state machine, which a lint run never uses
(importing them was most of the command's time).
"""

from __future__ import annotations

from typing import Final

from engine.types import ChannelCapabilities
from menus.schema import BACK, HOME, NEXT_PAGE, PREVIOUS_PAGE

__all__ = ["ALL", "SMS", "SMS_MAX_SEGMENTS", "SMS_NAVIGATION_WORDS", "USSD", "WEB", "WHATSAPP",
           "WHATSAPP_MAX_TEXT_CHARS", "WHATSAPP_NAVIGATION_WORDS"]

# 160 octets on the network: 182 GSM-7 characters, about 80 once one character needs UCS-2; the
# ``CON ``/``END `` prefix is part of it.
USSD: Final = ChannelCapabilities("ussd", max_chars=182, charset="gsm7", ucs2_max_chars=80, prefix_budget=4)

SMS_MAX_SEGMENTS: Final = 3
# Three concatenated parts: 153 GSM-7 septets each (the engine transliterates to GSM-7).
# No Back/Home line on an SMS: the customer sends a new command, or one of these words.
SMS_NAVIGATION_WORDS: Final = {"retour": BACK, "back": BACK, "menu": HOME, "accueil": HOME, "home": HOME,
                               "suite": NEXT_PAGE, "more": NEXT_PAGE, "next": NEXT_PAGE}
SMS: Final = ChannelCapabilities("sms", max_chars=SMS_MAX_SEGMENTS * 153, charset="gsm7",
                                 ucs2_max_chars=SMS_MAX_SEGMENTS * 67, show_navigation=False,
                                 navigation_words=SMS_NAVIGATION_WORDS)

WHATSAPP_MAX_TEXT_CHARS: Final = 4096
WHATSAPP_NAVIGATION_WORDS: Final = {"retour": BACK, "back": BACK, "menu": HOME, "accueil": HOME, "home": HOME,
                                    "suite": NEXT_PAGE, "more": NEXT_PAGE, "next": NEXT_PAGE,
                                    "precedent": PREVIOUS_PAGE, "previous": PREVIOUS_PAGE, "prev": PREVIOUS_PAGE}
WHATSAPP: Final = ChannelCapabilities("whatsapp", max_chars=WHATSAPP_MAX_TEXT_CHARS, charset="unicode",
                                      navigation_words=WHATSAPP_NAVIGATION_WORDS)

# A page holds far more than a handset screen; a long list (twelve bills) still comes in pages.
WEB: Final = ChannelCapabilities("web", max_chars=400, charset="unicode")

ALL: Final = (USSD, SMS, WHATSAPP, WEB)
