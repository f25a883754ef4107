"""On the embedded default (no REDIS_URL: the conversations live in the web process, and no worker can run a
message in them), a message the engine cannot run now (its conversation held by another message past the lock
wait) cannot be kept for the worker. It is not dropped in silence: by SMS the customer is told, in their
language, to send it again (Africa's Talking documents no retry of a 503), and sent again it is answered; on
WhatsApp, Twilio's customer gets the same request in the TwiML, and Meta gets a 503, which it delivers again."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask

from app.factory import create_app
from app.settings import Settings
from engine import MemorySessionStore
from tests.support.fake_africastalking import FakeAfricasTalking

from .sms_phone import SmsPhone
from .whatsapp_phones import MetaWhatsAppPhone, TwilioWhatsAppPhone

AWA = "+221770000001"          # French, account 1000001
BALANCE = "Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures"
BUSY = "Demande en cours de traitement. Merci de réessayer."
UNAVAILABLE = ("Désolé, un incident technique nous empêche de répondre. Renvoyez votre message dans quelques "
               "minutes. / Sorry, a technical problem keeps us from answering. Please send your message again "
               "in a few minutes.")


def embedded(settings: Settings) -> Flask:
    app = create_app(replace(settings, redis_url=None))
    assert isinstance(app.extensions["parts"]["store"], MemorySessionStore)
    return app


def test_an_sms_whose_conversation_stays_busy_is_asked_again_by_sms_and_answered_when_sent_again(
        sms_settings: Settings, fake_at: FakeAfricasTalking) -> None:
    app = embedded(sms_settings)
    awa = SmsPhone(app.test_client(), fake_at, AWA)
    with app.extensions["parts"]["store"].locked(f"sms:{AWA}", 0.0):   # another message holds it (9 s and more)
        assert awa.send("SOLDE") == [BUSY] and awa.last_status == 200
    first = awa.last_id
    assert awa.send("SOLDE", message_id=first) == [BALANCE]   # Africa's Talking posting it again: it runs now
    assert awa.send("SOLDE", message_id=first) == []          # and once only


@pytest.mark.parametrize("provider", ["twilio", "meta"])
def test_a_whatsapp_message_whose_conversation_stays_busy_is_not_dropped_in_silence(
        wa_settings: Settings, graph, provider: str) -> None:
    app = embedded(wa_settings)
    client = app.test_client()
    phone = TwilioWhatsAppPhone(client, AWA) if provider == "twilio" else MetaWhatsAppPhone(client, graph, AWA)
    # Twilio's conversations are keyed by its whatsapp: address, Meta's by the wa_id (digits).
    key = f"whatsapp:whatsapp:{AWA}" if provider == "twilio" else f"whatsapp:{AWA.lstrip('+')}"
    with app.extensions["parts"]["store"].locked(key, 0.0):
        told = phone.send("SOLDE")
    if provider == "twilio":
        assert told == [UNAVAILABLE] and phone.last_status == 200
    else:
        assert isinstance(phone, MetaWhatsAppPhone)
        assert told == [] and phone.last_status == 503    # Meta delivers the event again
        assert phone.send("SOLDE", message_id=phone.last_id)[0].startswith("Compte 1000001\nÀ payer: 12 500 FCFA")
