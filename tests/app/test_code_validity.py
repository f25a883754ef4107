"""A code the worker could not send while it still works is not sent late: the first-PIN code and the
account-link code live as long as the conversation that asked for them (USSD 3 minutes, WhatsApp 5), and their
SMS says so; the e-mail code its 30 minutes.
Sent late (the provider was down), it would only fail where the customer types it; instead the message is
failed, "its code expired", and its sealed code erased. The worker refuses to start when the templates'
minutes and the product's own validity disagree. Through the real app, worker and fakes."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from app.code_validity import CHATBOT_CHANNEL, validity_problems
from app.factory import build_adapters, build_dispatcher, build_gateway_guard, create_app
from app.notify import NotificationTemplates
from app.ops import Metrics
from app.settings import Settings
from app.storage import make_sessions
from app.worker import run_once
from channels.rasa import CHANNEL as RASA_CHANNEL
from engine.security_audit import LoggingSecurityAudit
from tests.channels.sms_phone import SmsPhone
from tests.channels.whatsapp_phones import TWILIO_PUBLIC_URL, TWILIO_TOKEN, TwilioWhatsAppPhone
from tests.support.clock import SettableClock
from tests.support.engine import UssdPhone
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_smtp import FakeSmtp

START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
HOLDER, STRANGER, PREPAID = "+221770000001", "+221770012222", "+221770000003"


@pytest.fixture
def worker_settings(settings: Settings, provider: FakeAfricasTalking, mail: FakeSmtp) -> Settings:
    """The engine and the worker of one deployment: one seal key, the fake SMS provider and SMTP server."""
    return replace(settings, at_api_key=provider.api_key, at_username=provider.username, at_api_url=provider.url,
                   smtp_url=mail.url, outbox_seal_key=Fernet.generate_key().decode(), quiet_hours="")


def outcomes(settings: Settings) -> list[tuple[str, str, str | None, bool]]:
    """Each outbox row as IT reads it: kind, status, the reason, whether a sealed code is still kept."""
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as db:
            rows = db.execute(text("SELECT kind, status, last_error, sealed FROM outbox_events ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(kind, status, error, sealed is not None) for kind, status, error, sealed in rows]


def expired(minutes: int) -> str:
    return (f"not sent: its code expired before it could be sent (valid {minutes} minutes); the customer asks "
            "for a new one")


@pytest.mark.parametrize("product_clock", [START], indirect=True)
def test_a_session_code_goes_within_the_session_s_minutes_and_not_after(
        worker_settings: Settings, product_clock: SettableClock, provider: FakeAfricasTalking) -> None:
    client = create_app(worker_settings).test_client()
    stranger = UssdPhone(client, STRANGER)           # links the holder's account: a code to the holder
    stranger.dial()
    for answer in ("1", "1000001", "5500"):
        stranger.answer(answer)
    product_clock.advance(minutes=2)                 # the provider was down two minutes: still in time
    assert run_once(worker_settings).get("notifications_sent") == 1
    [link] = provider.messages_to(HOLDER)
    assert "demande à lier le compte 1000001. Code: " in link and ", valable 3 minutes." in link

    prepaid = UssdPhone(client, PREPAID)             # a first PIN: a code by SMS, typed in the same session
    prepaid.dial("3")
    for answer in ("1", "2000", "2"):
        prepaid.answer(answer)
    assert prepaid.answer("1").startswith("CON Premier usage. Un code de 6 chiffres")
    product_clock.advance(minutes=4)                 # down four minutes: the USSD session (3 minutes) is gone
    assert run_once(worker_settings).get("notifications_failed") == 1
    assert provider.messages_to(PREPAID) == []
    assert outcomes(worker_settings) == [("link_code", "sent", None, False),
                                         ("pin_code", "failed", expired(3), False)]


@pytest.mark.parametrize("product_clock", [START], indirect=True)
def test_an_email_code_is_not_sent_after_its_30_minutes(
        worker_settings: Settings, product_clock: SettableClock, provider: FakeAfricasTalking,
        mail: FakeSmtp) -> None:
    sms = SmsPhone(create_app(worker_settings).test_client(), provider, HOLDER)
    assert sms.say("EMAIL awa@exemple.sn").startswith("Un code a été envoyé à a***@exemple.sn")
    product_clock.advance(minutes=31)                # the mail server was unreachable past the code's life
    assert run_once(worker_settings).get("notifications_failed") == 1
    assert mail.received == []
    assert outcomes(worker_settings) == [("email_code", "failed", expired(30), False)]
    # Asked again now, it goes at once.
    sms.say("EMAIL awa@exemple.sn")
    assert run_once(worker_settings).get("notifications_sent") == 1
    assert len(mail.messages_to("awa@exemple.sn")) == 1


def test_the_worker_refuses_to_start_when_a_code_s_minutes_drift_from_the_session_ttl(
        worker_settings: Settings) -> None:
    longer = replace(worker_settings, session_ttl_seconds=240)
    with pytest.raises(ValueError, match=r"notification 'pin_code' says valid_minutes: 3, but its code is valid 4 "
                                         r"minutes \(SESSION_TTL_SECONDS=240: .*\); write valid_minutes: 4"):
        build_dispatcher(longer, make_sessions(longer.database_url))


@pytest.mark.parametrize("product_clock", [START], indirect=True)
def test_a_code_asked_on_whatsapp_lives_its_five_minutes_one_asked_on_ussd_its_three(
        worker_settings: Settings, product_clock: SettableClock, provider: FakeAfricasTalking) -> None:
    settings = replace(worker_settings, twilio_auth_token=TWILIO_TOKEN, twilio_webhook_url=TWILIO_PUBLIC_URL)
    client = create_app(settings).test_client()
    stranger = TwilioWhatsAppPhone(client, STRANGER)   # links the holder's account on WhatsApp: 5 minutes idle
    stranger.say("Bonjour")
    for answer in ("1", "1000001"):
        stranger.say(answer)
    assert stranger.say("5500").startswith("Un code a été envoyé par SMS au numéro du titulaire du compte")
    prepaid = UssdPhone(client, PREPAID)               # a first PIN on USSD: 3 minutes idle
    prepaid.dial("3")
    for answer in ("1", "2000", "2"):
        prepaid.answer(answer)
    assert prepaid.answer("1").startswith("CON Premier usage. Un code de 6 chiffres")
    product_clock.advance(minutes=4)                   # the SMS provider was down four minutes
    done = run_once(settings)
    assert (done.get("notifications_sent"), done.get("notifications_failed")) == (1, 1)
    [link] = provider.messages_to(HOLDER)
    code = re.search(r"Code: ([0-9]{6}), valable 5 minutes\.", link)
    assert code, link
    assert provider.messages_to(PREPAID) == []          # its code would only fail where it is typed
    # Beside the webhook's own replies to the stranger (recorded as sent WhatsApp replies):
    assert [o for o in outcomes(settings) if o[0] != "whatsapp_reply"] == [
        ("link_code", "sent", None, False), ("pin_code", "failed", expired(3), False)]
    # The holder reads the code to the caller, who types it in the WhatsApp conversation still open.
    assert stranger.say(code.group(1)).startswith("Compte 1000001 lié à votre numéro.")


def test_the_dialogs_know_each_channel_s_session_time_as_its_adapter_declares_it(
        worker_settings: Settings) -> None:
    # Distinct times, so that one channel given another's is seen.
    settings = replace(worker_settings, session_ttl_seconds=170, sms_session_idle_seconds=310,
                       whatsapp_session_idle_seconds=290, web_idle_seconds=950, rasa_session_idle_seconds=890)
    app = create_app(settings)
    known = app.extensions["parts"]["deps"].settings
    adapters = build_adapters(settings, build_gateway_guard(settings), LoggingSecurityAudit(), Metrics(),
                              deps=app.extensions["parts"]["deps"])
    declared = {a.capabilities.name: a.session_policy.idle_seconds or settings.session_ttl_seconds for a in adapters}
    assert set(declared) == {"ussd", "sms", "whatsapp", "web"}
    assert {name: known.code_minutes(name) for name in declared} == {
        name: math.ceil(seconds / 60) for name, seconds in declared.items()}
    assert (CHATBOT_CHANNEL, known.code_minutes(CHATBOT_CHANNEL)) == (RASA_CHANNEL, 15)


def test_the_worker_refuses_to_start_when_a_session_code_does_not_read_its_minutes(
        worker_settings: Settings) -> None:
    templates = NotificationTemplates.load("config/notifications.yaml")
    assert validity_problems(templates, worker_settings) == []
    fixed = replace(templates.kinds["link_code"], expires_after=None)
    problems = validity_problems(replace(templates, kinds={**templates.kinds, "link_code": fixed}), worker_settings)
    said = ("notification 'link_code': its code is valid as long as the conversation that asked for it, which the "
            "payload says; write expires_after: minutes")
    assert problems == [said]


# ---------------------------------------------------------------- what the screens say
def test_the_screens_announcing_a_code_say_how_long_it_works_on_their_channel(worker_settings: Settings) -> None:
    # A USSD session of 4 minutes (not the default 3): the screens read the figure, they do not carry one.
    settings = replace(worker_settings, session_ttl_seconds=240, twilio_auth_token=TWILIO_TOKEN,
                       twilio_webhook_url=TWILIO_PUBLIC_URL)
    app = create_app(settings)
    client = app.test_client()
    outbox = app.extensions["parts"]["deps"].outbox

    stranger = UssdPhone(client, STRANGER)                # links the holder's account: a code to the holder
    stranger.dial()
    for answer in ("1", "1000001"):
        stranger.answer(answer)
    assert stranger.answer("5500") == ("CON Un code a été envoyé par SMS au numéro du titulaire du compte "
                                       "(+2217*****001). Entrez ce code (valable 4 min):\n1. Renvoyer le code\n"
                                       "0. Retour 00. Accueil")
    prepaid = UssdPhone(client, PREPAID)                  # a first PIN: a code by SMS to the number itself
    prepaid.dial("3")
    for answer in ("1", "2000", "2"):
        prepaid.answer(answer)
    assert prepaid.answer("1") == ("CON Premier usage. Un code de 6 chiffres vous a été envoyé par SMS. "
                                   "Entrez-le (valable 4 min):\n1. Renvoyer le code\n0. Retour 00. Accueil")
    assert {e["kind"]: e["payload"]["minutes"] for e in outbox.pending()} == {"link_code": 4, "pin_code": 4}

    app.extensions["parts"]["deps"].preferences.set_language("+221770013333", "en")
    other = TwilioWhatsAppPhone(client, "+221770013333")  # on WhatsApp, in English: its 5 minutes idle
    other.say("Hello")
    for answer in ("1", "1000001"):
        other.say(answer)
    assert other.say("5500") == ("A code was sent by SMS to the account holder's number (+2217*****001). "
                                 "Enter the code (valid for 5 min):\n1. Send the code again\n0. Back 00. Home")


@pytest.mark.parametrize("product_clock", [START], indirect=True)
def test_coming_back_for_an_e_mail_code_says_the_minutes_it_has_left(
        worker_settings: Settings, product_clock: SettableClock) -> None:
    client = create_app(worker_settings).test_client()

    def channel_menu() -> tuple[UssdPhone, str]:
        p = UssdPhone(client, HOLDER)
        p.dial()
        p.answer("8")
        return p, p.answer("6")

    p, _ = channel_menu()
    p.answer("4")                                          # add an e-mail address
    assert p.answer("awa@exemple.sn") == ("CON Un code a été envoyé à a***@exemple.sn. Tapez-le ici (valable "
                                          "30 minutes):\n1. Renvoyer le code\n0. Retour 00. Accueil")
    product_clock.advance(minutes=20)                      # the mail took its time; the customer dials again
    p, menu = channel_menu()
    assert "\n5. Taper le code envoyé par e-mail\n" in menu
    assert p.answer("5") == ("CON Un code a été envoyé à a***@exemple.sn. Tapez-le ici (valable "
                             "10 minutes):\n1. Renvoyer le code\n0. Retour 00. Accueil")
    product_clock.advance(minutes=11)                      # past its 30 minutes: no code left to type
    _, menu = channel_menu()
    assert "Taper le code" not in menu and "\n4. Ajouter une adresse e-mail\n" in menu
