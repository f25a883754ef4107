"""When the product, not the message, fails unexpectedly: each WhatsApp provider gets the answer that keeps the
message.

Meta delivers a webhook again (for days, with backoff) when it was not answered with a 2xx: an unexpected error
gets ``503``, nothing is sent, and Meta's redelivery is answered as the first delivery would have been. Twilio
does not post a message again by default: there the customer is told, in the TwiML answer, to send it again in
a moment. A malformed request keeps its 400 on both. (A message the engine could not run now, the session store
down, is kept and answered by the worker: ``test_whatsapp_inbox.py``.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from .whatsapp_phones import MetaWhatsAppPhone, TwilioWhatsAppPhone

AWA = "+221770000001"
MENU = "ElecNet - 1000001\n1. Solde et factures"
MENU_LIST = "ElecNet - 1000001\n(Choisir)\n- 1 Solde et factures"     # as a list on Meta
TRY_AGAIN = ("Désolé, un incident technique nous empêche de répondre. Renvoyez votre message dans quelques minutes. / "
             "Sorry, a technical problem keeps us from answering. Please send your message again in a few minutes.")


def boom(*_: Any, **__: Any) -> Any:
    raise RuntimeError("an unexpected failure inside the product")


def test_meta_an_unexpected_error_gets_503_so_meta_delivers_the_event_again(
        wa_app: Flask, meta_phone: Callable[[str], MetaWhatsAppPhone], monkeypatch: pytest.MonkeyPatch) -> None:
    awa = meta_phone(AWA)
    engine = wa_app.extensions["engine"]
    monkeypatch.setattr(engine, "handle", boom)
    response = awa.client.post("/whatsapp/meta", data=b"{}", content_type="application/json")
    assert response.status_code == 403            # unsigned: still refused
    assert awa.send("MENU") == [] and awa.last_status == 503
    monkeypatch.undo()
    [menu] = awa.send("MENU", message_id=awa.last_id)
    assert awa.last_status == 200 and menu.startswith(MENU_LIST)


def test_twilio_an_unexpected_error_tells_the_customer_to_send_the_message_again(
        wa_app: Flask, twilio_phone: Callable[[str], TwilioWhatsAppPhone], monkeypatch: pytest.MonkeyPatch) -> None:
    awa = twilio_phone(AWA)
    monkeypatch.setattr(wa_app.extensions["engine"], "handle", boom)
    assert awa.send("MENU") == [TRY_AGAIN]
    assert awa.last_status == 200                 # Twilio delivers a 200's message; it posts nothing again
    monkeypatch.undo()
    [menu] = awa.send("MENU")
    assert menu.startswith(MENU)
