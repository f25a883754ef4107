"""The flow simulator as agents and designers use it: a demo customer's conversation played through the one
engine in a sandbox, each screen as the phone shows it, with its length and character set."""

from __future__ import annotations

import re

import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.settings import Settings
from app.storage import make_sessions
from app.storage.agent_console import AgentAuditRow
from app.storage.models import ConsentChangeRow
from engine.charset import is_gsm7
from web_fallback.agents import SimChannel, measure_screen

from .conftest import sign_in


def start(client: FlaskClient, token: str, channel: str = "ussd", language: str = "fr",
          number: str = "+221770000001", text: str = "") -> str:
    response = client.post("/simulator/start", data={"channel": channel, "language": language, "number": number,
                                                     "text": text, "csrf_token": token}, follow_redirects=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def answer(client: FlaskClient, token: str, text: str) -> str:
    response = client.post("/simulator/answer", data={"text": text, "csrf_token": token}, follow_redirects=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def current_screen(page: str) -> str:
    found = re.search(r'<figure class="phone current">.*?<pre class="screen">(.*?)</pre>\s*<p class="measure (\w+)">'
                      r'<span class="count">(.*?)</span> · <span class="charset">(.*?)</span>', page, re.DOTALL)
    assert found, page
    return f"{found.group(1)}\n[{found.group(3)}, {found.group(4)}, {found.group(2)}]"


def test_a_designer_plays_the_ussd_balance_as_the_phone_shows_it(agents_app: Flask) -> None:
    client = agents_app.test_client()
    token = sign_in(client, "Fatou", "designer")
    assert current_screen(start(client, token)) == (
        "CON ElecNet - 1000001\n1. Solde et factures\n2. Consommation\n3. Payer\n4. Panne/réclamation\n"
        "5. Suivi demande\n6. Délai de paiement\n7. Simulateur\n8. Préférences\n[155/182 characters, GSM-7, ok]")
    assert current_screen(answer(client, token, "1")).startswith(
        "CON Compte 1000001\nA payer: 12 500 FCFA\nFactures impayées: 2\n")


def test_a_dial_with_a_shortcut_and_an_english_business_customer(agent: tuple[FlaskClient, str]) -> None:
    client, token = agent
    screen = current_screen(start(client, token, language="en", number="+221770000002", text="1"))
    # *123*1#: a business customer picks an account first.
    assert screen.startswith("CON ") and "2000001" in screen and "2000002" in screen


def test_an_sms_conversation_shows_the_reply_and_its_sms_parts(agent: tuple[FlaskClient, str]) -> None:
    client, token = agent
    page = start(client, token, channel="sms", text="SOLDE")
    assert "Compte 1000001" in page and "A payer: 12 500 FCFA" in page and "1 SMS part(s)" in page


def test_the_simulator_plays_only_demo_customers(agent: tuple[FlaskClient, str]) -> None:
    client, token = agent
    response = client.post("/simulator/start", data={"channel": "ussd", "language": "fr", "number": "+221771234567",
                                                     "text": "", "csrf_token": token})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "only the demo customers" in response.get_data(as_text=True)


def test_hostile_simulator_input_gets_a_clear_page(agent: tuple[FlaskClient, str]) -> None:
    client, token = agent
    start(client, token)
    for text in ("1\x00", "9" * 500):
        response = client.post("/simulator/answer", data={"text": text, "csrf_token": token})
        assert response.status_code == 400 and "at most 160 characters" in response.get_data(as_text=True)
    response = client.post("/simulator/start", data={"channel": "fax", "language": "xx", "number": "1",
                                                     "csrf_token": token})
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_simulated_sessions_are_the_agents_and_change_no_real_record(
        agent: tuple[FlaskClient, str], agents_settings: Settings) -> None:
    client, token = agent
    page = start(client, token, channel="sms", text="STOP")
    assert "STOP" in page
    # The sandbox kept the STOP in its own database; the product's own has no trace of it.
    with make_sessions(agents_settings.simulator_database_url)() as db:
        assert db.scalars(select(ConsentChangeRow.action)).all() == ["stop"]
    with make_sessions(agents_settings.database_url)() as db:
        assert db.scalars(select(ConsentChangeRow.action)).all() == []
        started = db.scalars(select(AgentAuditRow).where(AgentAuditRow.action == "simulator_start")).one()
    assert started.agent == "dev:awa"
    # Sessions sit under the simulator's own prefix, keyed to the agent.
    keys = [k.decode() if isinstance(k, bytes) else k
            for k in redis.Redis.from_url(agents_settings.redis_url or "").keys("*")]
    assert any(k.startswith("sim:s:sim:") for k in keys)
    assert not any(k.startswith("conv:") and "+221770000001" in k for k in keys)


def test_the_simulator_shows_the_linter_report(agent: tuple[FlaskClient, str]) -> None:
    client, _ = agent
    assert "The loaded menus have no problem." in client.get("/simulator/").get_data(as_text=True)


def test_the_measure_flags_a_screen_that_needs_ucs2() -> None:
    from channels.ussd import CAPABILITIES, UssdAdapter

    ussd = SimChannel("ussd", "USSD", CAPABILITIES, UssdAdapter().render)
    assert measure_screen("CON Prêt", ussd) == {"chars": 8, "limit": 80, "charset": "UCS-2", "fits": True}
    assert is_gsm7("CON Pret")
    over = measure_screen("END " + "é" * 179, ussd)
    assert (over["chars"], over["limit"], over["charset"], over["fits"]) == (183, 182, "GSM-7", False)


def test_without_a_demo_back_office_the_simulator_refuses_to_play(agents_settings: Settings) -> None:
    # In production (an identity provider, no local sign-in) BACKOFFICE_URL is the utility's real systems.
    import time
    from dataclasses import replace

    from app.factory import create_app

    app = create_app(replace(agents_settings, agents_dev_signin=False, oidc_issuer="http://127.0.0.1:9"))
    client = app.test_client()
    with client.session_transaction() as cookie:   # signed in by the identity provider as a designer
        cookie["agent"] = {"sub": "fatou", "name": "Fatou", "roles": ["designer"], "via": "oidc",
                           "seen": time.time(), "since": time.time()}
        cookie["agent_csrf"] = "t"
    assert "set SIMULATOR_BACKOFFICE_URL" in client.get("/simulator/").get_data(as_text=True)
    response = client.post("/simulator/start", data={"channel": "ussd", "language": "fr",
                                                     "number": "+221770000001", "csrf_token": "t"})
    assert response.status_code == 503 and "demo back office" in response.get_data(as_text=True)


def test_the_designer_picks_each_channel_once_by_its_name(agents_app: Flask) -> None:
    # Twilio and Meta both answer as WhatsApp: one entry, not "whatsapp" twice, and the web as a web page.
    client = agents_app.test_client()
    sign_in(client, "Fatou", "designer")
    page = client.get("/simulator/").get_data(as_text=True)
    picker = re.search(r'<select name="channel">(.*?)</select>', page, re.DOTALL)
    assert picker, page
    assert re.findall(r'<option value="(\w+)" >([^<]+)</option>', picker.group(1)) == [
        ("ussd", "USSD (*123#)"), ("sms", "SMS keywords"), ("whatsapp", "WhatsApp"), ("web", "Web pages")]


def test_a_whatsapp_conversation_goes_on_with_the_number_the_customer_types(agent: tuple[FlaskClient, str]) -> None:
    # On WhatsApp the customer taps a button or types its number: "1" opens the balance, as on the phone.
    client, token = agent
    page = start(client, token, channel="whatsapp", text="Bonjour")
    assert current_screen(page).startswith("ElecNet - 1000001\n[Menu]\n- 1: Solde et factures\n- 2: Consommation\n")
    screen = current_screen(answer(client, token, "1"))
    # Shown as the phone shows it (the text and its buttons, each with the key a tap sends), not as JSON.
    assert screen == ("Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n"
                      "[1: Dernières factures] [0: Retour] [00: Accueil]\n[106/4096 characters, UCS-2, ok]")


def test_the_web_channel_plays_its_pages_as_text_from_the_menu_the_sign_in_shows(
        agent: tuple[FlaskClient, str]) -> None:
    # Signed in, the customer sees the menu without writing anything; each button is shown in brackets.
    client, token = agent
    page = start(client, token, channel="web")
    assert current_screen(page) == (
        "ElecNet - 1000001\n[1. Solde et factures]\n[2. Consommation]\n[3. Payer]\n[4. Panne/réclamation]\n"
        "[5. Suivi demande]\n[6. Délai de paiement]\n[7. Simulateur]\n[8. Préférences]\n[183/400 characters, GSM-7, ok]")
    assert current_screen(answer(client, token, "1")).startswith(
        "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2\n[1. Dernières factures]\n[Retour] [Accueil]\n")
    assert current_screen(answer(client, token, "abc")).startswith("! Choix invalide.\nCompte 1000001\n")


def test_a_chat_channel_started_without_the_customers_message_says_who_writes_first(
        agent: tuple[FlaskClient, str]) -> None:
    client, token = agent
    response = client.post("/simulator/start", data={"channel": "whatsapp", "language": "fr",
                                                     "number": "+221770000001", "text": "", "csrf_token": token})
    assert response.status_code == 400
    assert "On WhatsApp the customer writes first: type their first message" in response.get_data(as_text=True)
