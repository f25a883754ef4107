"""A WhatsApp message the product could not run when it came (the session store down) is not lost, through
either provider: the webhook keeps it and answers 200 (Twilio: an empty TwiML, no "send it again" message),
the worker runs it once the store is back and its reply goes out once through the outbox's WhatsApp sender,
laid out as the webhook would have answered it (Twilio's bodies of at most 1 600 characters, in order, none lost
or sent twice when a part has to be tried again; Meta's buttons or list); kept more than 30 minutes, it gets a
short apology in the customer's language instead. Against a
redis-server of the test's own (killed and started again), the fake Twilio and Graph APIs and the fake Africa's
Talking SMS API on loopback, the real back office and the product's database."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import make_sessions
from app.storage.answer_ledger import RedisAnswerLedger
from app.storage.contacts import SqlContacts
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph, readable
from tests.support.fake_twilio import FakeTwilio
from tests.support.throwaway_redis import ThrowawayRedis

from .whatsapp_phones import (
    PHONE_NUMBER_ID,
    MetaWhatsAppPhone,
    TwilioWhatsAppPhone,
    twilio_reports,
    twilio_sending,
    whatsapp_settings,
)

AWA = "+221770000001"          # French, account 1000001
AMINATA = "+221770000002"      # English, business customer
BALANCE = "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n1. Dernières factures\n0. Retour 00. Accueil"
# The same screen through Meta: its option and Back and Home as reply buttons (as the fake's handset shows them).
BALANCE_BUTTONS = "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n[1 Dernières factures] [0 Retour] [00 Accueil]"
TRY_AGAIN = ("Désolé, un incident technique nous empêche de répondre. Renvoyez votre message dans quelques minutes. / "
             "Sorry, a technical problem keeps us from answering. Please send your message again in a few minutes.")
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)


@pytest.fixture
def twilio_settings(settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
                    throwaway_redis: ThrowawayRedis) -> Settings:
    """WhatsApp in and out through Twilio's fake, SMS out through Africa's Talking's; sessions in a Redis the
    test stops and starts again; the web process and the worker share SECRET_KEY."""
    return replace(twilio_sending(settings, twilio, provider), redis_url=throwaway_redis.url,
                   secret_key="kept-whatsapp-test-key")


@pytest.fixture
def meta_settings(settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
                  throwaway_redis: ThrowawayRedis) -> Settings:
    """WhatsApp in and out through Meta's fake Graph API (our number's id set: the outbox sends through Meta)."""
    return replace(whatsapp_settings(settings, graph), meta_phone_number_id=PHONE_NUMBER_ID,
                   at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   quiet_hours="", redis_url=throwaway_redis.url, secret_key="kept-whatsapp-test-key")


def _refused(self: RedisAnswerLedger, channel: str, message_id: str, record: dict[str, Any]) -> None:
    """``RedisAnswerLedger.keep`` when Redis refuses the write: logged, nothing kept, nothing raised."""
    logging.getLogger("app.answers").warning("answer ledger unreachable, answer not kept: ConnectionError")


def _twilio_texts(twilio: FakeTwilio, msisdn: str) -> list[str]:
    """What Twilio was asked to send to this WhatsApp number, as the customer reads it."""
    return [m.get("Body", "") for m in twilio.sent if m.get("To") == f"whatsapp:{msisdn}"]


def _graph_texts(graph: FakeGraph, msisdn: str) -> list[str]:
    return [readable(m) for m in graph.messages_to(msisdn.lstrip("+"))]


def _inbox(settings: Settings) -> list[tuple[str, str, str, str]]:
    """The kept messages as whoever reads the database sees them: id, channel, provider, status."""
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(text(
                "SELECT message_id, channel, provider, status FROM sms_inbox ORDER BY id"))]
    finally:
        engine.dispose()


def _solde_kept_while_the_store_was_down(phone: TwilioWhatsAppPhone | MetaWhatsAppPhone, store: ThrowawayRedis) -> None:
    """The customer writes SOLDE while the session store is down (kept for the worker); the store then back."""
    store.stop()
    phone.send("SOLDE")
    store.start()


def test_twilio_a_message_sent_while_the_store_is_down_is_answered_on_whatsapp_once_it_is_back(
        twilio_settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    app = create_app(twilio_settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    throwaway_redis.stop()                        # the session store is gone
    assert awa.send("SOLDE") == []                # an empty <Response/>: no "send it again" message
    assert awa.last_status == 200
    assert worker.run_once(twilio_settings).get("kept_waiting") == 1   # still down: it waits
    assert _twilio_texts(twilio, AWA) == []

    throwaway_redis.start()                       # back (empty)
    product_clock.advance(seconds=5)
    done = worker.run_once(twilio_settings)
    assert (done["kept_answered"], done["notifications_sent"]) == (1, 1)
    assert _twilio_texts(twilio, AWA) == [BALANCE]
    assert provider.messages_to(AWA) == []        # on WhatsApp, where the customer wrote
    # Handled once: another pass, or Twilio posting the same message again, sends nothing more.
    assert worker.run_once(twilio_settings).get("notifications_sent") is None
    assert awa.send("SOLDE", sid=awa.last_sid) == [] and awa.last_status == 200
    assert _twilio_texts(twilio, AWA) == [BALANCE]
    assert _inbox(twilio_settings) == [(awa.last_sid, "whatsapp", "twilio", "answered")]
    # The conversation goes on from the reply the customer read.
    assert awa.say("1").startswith("Factures (choisissez):\n1. novembre 2026 5 500 FCFA impayée\n")


def test_twilio_the_same_message_posted_again_while_kept_is_kept_and_answered_once(
        twilio_settings: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(twilio_settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    throwaway_redis.stop()
    assert awa.send("SOLDE") == [] and awa.last_status == 200
    assert awa.send("SOLDE", sid=awa.last_sid) == [] and awa.last_status == 200
    assert [(sid, status) for sid, _, _, status in _inbox(twilio_settings)] == [(awa.last_sid, "pending")]
    throwaway_redis.start()
    worker.run_once(twilio_settings)
    worker.run_once(twilio_settings)
    assert len(_twilio_texts(twilio, AWA)) == 1


def test_twilio_a_kept_message_posted_again_once_the_store_is_back_waits_and_is_answered_once_by_the_worker(
        twilio_settings: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(twilio_settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    _solde_kept_while_the_store_was_down(awa, throwaway_redis)
    # Twilio posts it again before the worker's pass: an empty TwiML, it waits with the rest ...
    assert awa.send("SOLDE", sid=awa.last_sid) == [] and awa.last_status == 200
    # ... and the worker answers it once.
    worker.run_once(twilio_settings)
    worker.run_once(twilio_settings)
    assert _twilio_texts(twilio, AWA) == [BALANCE]
    assert [status for *_, status in _inbox(twilio_settings)] == ["answered"]


def test_twilio_a_message_written_once_the_store_is_back_is_answered_after_the_kept_one(
        twilio_settings: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(twilio_settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    _solde_kept_while_the_store_was_down(awa, throwaway_redis)
    assert awa.send("1") == [] and awa.last_status == 200     # not answered before the balance it chooses from
    worker.run_once(twilio_settings)
    balance, bills = _twilio_texts(twilio, AWA)
    assert balance == BALANCE and bills.startswith("Factures (choisissez):\n1. novembre 2026 5 500 FCFA impayée\n")


def test_twilio_a_kept_message_whose_answered_mark_cannot_be_written_is_not_answered_again_when_posted_again(
        twilio_settings: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(twilio_settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    _solde_kept_while_the_store_was_down(awa, throwaway_redis)
    with monkeypatch.context() as ledger_down:    # the worker's marks in the answer ledger are refused
        ledger_down.setattr(RedisAnswerLedger, "keep", _refused)
        worker.run_once(twilio_settings)
    assert _twilio_texts(twilio, AWA) == [BALANCE]
    # Twilio posts it again: not answered a second time in the TwiML, now or after the worker's next pass (even
    # 31 minutes later: no apology for a message answered).
    assert awa.send("SOLDE", sid=awa.last_sid) == [] and awa.last_status == 200
    product_clock.advance(minutes=31)
    worker.run_once(twilio_settings)
    assert awa.send("SOLDE", sid=awa.last_sid) == [] and awa.last_status == 200
    assert _twilio_texts(twilio, AWA) == [BALANCE]
    assert [status for *_, status in _inbox(twilio_settings)] == ["answered"]


def test_meta_a_message_written_once_the_store_is_back_is_answered_after_the_kept_one(
        meta_settings: Settings, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    _solde_kept_while_the_store_was_down(awa, throwaway_redis)
    assert awa.send("1") == [] and awa.last_status == 200     # acknowledged, not answered before the balance
    worker.run_once(meta_settings)
    balance, bills = _graph_texts(graph, AWA)
    assert balance == BALANCE_BUTTONS and bills.startswith("Factures (choisissez):\n")


def test_twilio_a_reply_refused_outside_the_24_hour_window_goes_by_sms(
        twilio_settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    app = create_app(twilio_settings)
    client = app.test_client()
    awa = TwilioWhatsAppPhone(client, AWA, token=twilio.auth_token)
    _solde_kept_while_the_store_was_down(awa, throwaway_redis)
    twilio.window_closed.add(AWA)                 # Twilio takes it, then reports it undeliverable (63016)
    worker.run_once(twilio_settings)
    assert _twilio_texts(twilio, AWA) == [BALANCE]
    assert twilio_reports(client, twilio) == [204]
    worker.run_once(twilio_settings)
    assert provider.messages_to(AWA) == [BALANCE]


def test_meta_a_message_sent_while_the_store_is_down_is_acknowledged_and_answered_once_it_is_back(
        meta_settings: Settings, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    throwaway_redis.stop()
    assert awa.send("SOLDE") == []
    assert awa.last_status == 200                 # kept: Meta need not deliver it again
    throwaway_redis.start()
    product_clock.advance(seconds=5)
    assert worker.run_once(meta_settings)["notifications_sent"] == 1
    [reply] = graph.messages_to(AWA.lstrip("+"))
    assert reply["phone_number_id"] == PHONE_NUMBER_ID   # free form, in the window: buttons as in time
    assert readable(reply) == BALANCE_BUTTONS
    # Meta delivering the event again (it had no 200 in time, say) is acknowledged: nothing more is sent.
    assert awa.send("SOLDE", message_id=awa.last_id) == [] and awa.last_status == 200
    worker.run_once(meta_settings)
    assert len(graph.messages_to(AWA.lstrip("+"))) == 1


def test_a_whatsapp_message_kept_more_than_30_minutes_gets_an_apology_in_its_language(
        meta_settings: Settings, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    aminata = MetaWhatsAppPhone(app.test_client(), graph, AMINATA)
    throwaway_redis.stop()
    awa.send("SOLDE")
    aminata.send("BALANCE")
    product_clock.advance(minutes=31)
    throwaway_redis.start()
    done = worker.run_once(meta_settings)
    assert (done["kept_late"], done["notifications_sent"]) == (2, 2)
    assert _graph_texts(graph, AWA) == [
        ("ElecNet: désolé, votre message WhatsApp du 26/11 09:00 n'a pas été traité à temps (incident "
         "technique). Merci de le renvoyer.")]
    assert _graph_texts(graph, AMINATA) == [
        ("ElecNet: sorry, your WhatsApp message of 26/11 09:00 could not be handled in time (technical "
         "incident). Please send it again.")]
    worker.run_once(meta_settings)
    assert len(_graph_texts(graph, AWA)) == len(_graph_texts(graph, AMINATA)) == 1


def test_a_whatsapp_message_that_finds_its_conversation_busy_is_kept_and_answered_by_the_worker(
        meta_settings: Settings, graph: FakeGraph, product_clock: SettableClock) -> None:
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    store = app.extensions["parts"]["store"]
    with store.locked(f"whatsapp:{AWA.lstrip('+')}", 0.0):    # another message holds the conversation
        assert awa.send("SOLDE") == [] and awa.last_status == 200
    worker.run_once(meta_settings)
    assert _graph_texts(graph, AWA) == [BALANCE_BUTTONS]


def test_a_message_that_can_be_neither_run_nor_kept_is_refused_so_meta_delivers_it_again(
        meta_settings: Settings, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    database = create_engine(meta_settings.database_url)
    with database.begin() as db:                  # the database cannot keep it either
        db.execute(text("ALTER TABLE sms_inbox RENAME TO sms_inbox_away"))
    throwaway_redis.stop()
    assert awa.send("SOLDE") == [] and awa.last_status == 503
    with database.begin() as db:
        db.execute(text("ALTER TABLE sms_inbox_away RENAME TO sms_inbox"))
    database.dispose()
    throwaway_redis.start()
    [balance] = awa.send("SOLDE", message_id=awa.last_id)
    assert awa.last_status == 200 and balance.startswith("Compte 1000001\nÀ payer: 12 500 FCFA\n")


def test_twilio_a_message_that_can_be_neither_run_nor_kept_asks_the_customer_to_send_it_again(
        twilio_settings: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(twilio_settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    database = create_engine(twilio_settings.database_url)
    with database.begin() as db:                  # the database cannot keep it either
        db.execute(text("ALTER TABLE sms_inbox RENAME TO sms_inbox_away"))
    throwaway_redis.stop()
    assert awa.send("SOLDE") == [TRY_AGAIN] and awa.last_status == 200   # Twilio would not post it again
    with database.begin() as db:
        db.execute(text("ALTER TABLE sms_inbox_away RENAME TO sms_inbox"))
    database.dispose()
    throwaway_redis.start()
    assert awa.send("SOLDE") == [BALANCE]


def test_the_late_reply_goes_on_whatsapp_whatever_the_customer_chose_and_by_sms_if_meta_refuses_it_at_once(
        meta_settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis, product_clock: SettableClock) -> None:
    contacts = SqlContacts(make_sessions(meta_settings.database_url))
    contacts.set_channel(AWA, "sms", via="ussd", source="menu")       # her alerts go by SMS
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    throwaway_redis.stop()
    awa.send("SOLDE")
    awa.send("1")
    throwaway_redis.start()
    graph.next_errors[:] = [(400, 131047)]        # Meta refuses the first at once: outside the 24-hour window
    worker.run_once(meta_settings)
    [bills] = _graph_texts(graph, AWA)            # the second reply went where she wrote ...
    assert bills.startswith("Factures (choisissez):\n")
    assert provider.messages_to(AWA) == [BALANCE]   # ... the first, refused, by SMS


# Screens longer than one Twilio message: an operator whose greeting carries the week's works notices, shown
# to a number linked to no account above its offer to link one (``{greeting}`` in config/menus.yaml).
STRANGERS = ("+221770009991", "+221770009992")
NOTICES = "\\n".join(f"Avis {n:02d}: travaux sur le réseau du quartier {n}, coupure prévue de 9 h à 12 h."
                      for n in range(1, 46))


@pytest.fixture
def long_screens(twilio_settings: Settings, tmp_path: Path) -> Settings:
    menus = Path(twilio_settings.menus_path)
    source = menus.read_text(encoding="utf-8")
    plain = 'greeting: {fr: "Bienvenue chez {brand}", en: "Welcome to {brand}"}'
    assert plain in source
    long = f'greeting: {{fr: "Bienvenue chez {{brand}}\\n{NOTICES}", en: "Welcome to {{brand}}\\n{NOTICES}"}}'
    config = shutil.copytree(menus.parent, tmp_path / "config")     # with its included files
    copy = config / menus.name
    copy.write_text(source.replace(plain, long), encoding="utf-8")
    return replace(twilio_settings, menus_path=str(copy))


def test_twilio_a_long_late_reply_goes_as_the_same_messages_as_in_time_in_order_each_once(
        long_screens: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(long_screens)
    in_time = TwilioWhatsAppPhone(app.test_client(), STRANGERS[0], token=twilio.auth_token)
    late = TwilioWhatsAppPhone(app.test_client(), STRANGERS[1], token=twilio.auth_token)
    answered = in_time.send("Bonjour")            # the webhook's answer: several <Message>s
    assert len(answered) == 3 and all(len(body) <= 1600 for body in answered)
    assert "\n".join(answered).startswith("Bienvenue chez ElecNet\nAvis 01: travaux")
    assert "Avis 45: travaux" in answered[-1] and "Ce numéro n'est lié à aucun compte" in answered[-1]

    throwaway_redis.stop()
    assert late.send("Bonjour") == [] and late.last_status == 200     # kept
    throwaway_redis.start()

    def twilio_busy_for_the_next_part() -> None:
        twilio.before_answer = None
        twilio.next_error.append((503, 20503, "Service Unavailable"))

    twilio.before_answer = twilio_busy_for_the_next_part     # the second part finds Twilio busy
    product_clock.advance(seconds=5)
    worker.run_once(long_screens)
    assert _twilio_texts(twilio, STRANGERS[1]) == answered[:1]         # the first part, kept as taken
    product_clock.advance(minutes=1)              # the outbox's backoff: the rest, not the first again
    assert worker.run_once(long_screens)["notifications_sent"] == 1
    assert _twilio_texts(twilio, STRANGERS[1]) == answered              # the same messages, in order, once each
    # The conversation goes on from the screen the customer read: "2. Non".
    assert late.send("2") == ["Merci d'avoir utilisé ElecNet. Au revoir."]
    product_clock.advance(minutes=5)
    assert worker.run_once(long_screens).get("notifications_sent") is None
    assert _twilio_texts(twilio, STRANGERS[1]) == answered


def _as_sent(message: dict[str, Any]) -> dict[str, Any]:
    """A Graph message as the customer's phone renders it: what it shows, not its id or recipient."""
    return {key: value for key, value in message.items() if key not in ("id", "to")}


@pytest.mark.parametrize("command", ["SOLDE", "MENU"])
def test_meta_a_late_reply_is_the_same_messages_as_in_time_buttons_or_list(
        meta_settings: Settings, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock, command: str) -> None:
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    awa.send(command)
    in_time = [_as_sent(m) for m in graph.messages_to(AWA.lstrip("+"))]
    assert [m["interactive"]["type"] for m in in_time] == ["button" if command == "SOLDE" else "list"]
    throwaway_redis.stop()
    assert awa.send(command) == [] and awa.last_status == 200
    throwaway_redis.start()
    product_clock.advance(seconds=5)
    assert worker.run_once(meta_settings)["notifications_sent"] == 1
    assert [_as_sent(m) for m in graph.messages_to(AWA.lstrip("+"))] == in_time * 2
    awa.tap("1")                                  # its buttons work as in time
    assert readable(awa.last_sent()).startswith("Factures (choisissez):" if command == "SOLDE" else "Compte 1000001")


def test_meta_a_kept_message_answered_before_redis_restarted_empty_is_not_answered_again_when_delivered_again(
        meta_settings: Settings, graph: FakeGraph, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(meta_settings)
    awa = MetaWhatsAppPhone(app.test_client(), graph, AWA)
    _solde_kept_while_the_store_was_down(awa, throwaway_redis)
    kept_id = awa.last_id
    product_clock.advance(seconds=5)
    worker.run_once(meta_settings)
    assert _graph_texts(graph, AWA) == [BALANCE_BUTTONS]
    throwaway_redis.stop()
    throwaway_redis.start()                       # Redis restarted empty: the answer ledger forgot the message
    assert awa.send("SOLDE", message_id=kept_id) == [] and awa.last_status == 200   # the database knows
    worker.run_once(meta_settings)
    assert _graph_texts(graph, AWA) == [BALANCE_BUTTONS]


def test_twilio_a_kept_message_answered_before_redis_restarted_empty_gets_no_second_answer(
        twilio_settings: Settings, twilio: FakeTwilio, throwaway_redis: ThrowawayRedis,
        product_clock: SettableClock) -> None:
    app = create_app(twilio_settings)
    awa = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    _solde_kept_while_the_store_was_down(awa, throwaway_redis)
    kept_sid = awa.last_sid
    product_clock.advance(seconds=5)
    worker.run_once(twilio_settings)
    assert _twilio_texts(twilio, AWA) == [BALANCE]
    throwaway_redis.stop()
    throwaway_redis.start()
    assert awa.send("SOLDE", sid=kept_sid) == [] and awa.last_status == 200
    worker.run_once(twilio_settings)
    assert _twilio_texts(twilio, AWA) == [BALANCE]
