"""The chatbot channel: the Rasa server's calls to our action server, French and English, against
the real back office, Redis and the engine's database. Conversations read like chats: what the
user typed (or tapped), what the bot answered and which buttons it offered."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from sanic import Sanic

from app.actions_server import build_action_app
from app.settings import Settings

from .rasa_chat import RasaChat

TOKEN = "rasa-action-token-for-tests"
SECRET = "front-channel-identity-secret"
PIN = "2468"


@pytest.fixture
def rasa_settings(settings: Settings) -> Settings:
    return replace(settings, rasa_action_token=TOKEN, rasa_identity_secret=SECRET)


@pytest.fixture
def action_app(rasa_settings: Settings) -> Iterator[Sanic]:
    # A fresh app per test (rasa-sdk names every app "rasa_sdk"; Sanic keeps one per name).
    app = build_action_app(rasa_settings)
    yield app
    Sanic.unregister_app(app)


@pytest.fixture
def chat(action_app: Sanic) -> Callable[..., RasaChat]:
    def user(sender_id: str, msisdn: str | None, language: str | None = None) -> RasaChat:
        return RasaChat(action_app, TOKEN, sender_id, msisdn, SECRET, language)
    return user


# ---------------------------------------------------------------- French
def test_balance_in_french_answers_with_buttons_for_the_next_steps(chat):
    awa = chat("conv-awa-1", "+221770000001")
    assert awa.say("je veux mon solde", intent="check_balance") == (
        "Compte 1000001\nÀ payer: 12 500 FCFA\nFactures impayées: 2")
    assert awa.buttons == [{"title": "Dernières factures", "payload": "1"}, {"title": "Retour", "payload": "0"},
                           {"title": "Accueil", "payload": "00"}]
    assert awa.press("Dernières factures").startswith("Factures (choisissez):")
    assert awa.titles()[0] == "novembre 2026 5 500 FCFA impayée"


def test_a_greeting_opens_the_main_menu_and_a_tap_follows_it(chat):
    awa = chat("conv-awa-2", "+221770000001")
    assert awa.say("bonjour", intent="greet") == "ElecNet - 1000001"
    assert awa.titles()[:4] == ["Solde et factures", "Consommation", "Payer", "Panne/réclamation"]
    assert awa.press("Solde et factures").startswith("Compte 1000001\nÀ payer: 12 500 FCFA")
