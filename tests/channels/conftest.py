"""WhatsApp fixtures: the product with both WhatsApp providers configured against a fake Graph API on
loopback, and handsets for each provider (``tests/channels/whatsapp_phones.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from app.factory import create_app
from app.settings import Settings
from tests.support.fake_graph import FakeGraph, fake_graph

from .whatsapp_phones import MetaWhatsAppPhone, TwilioWhatsAppPhone, whatsapp_settings


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with fake_graph() as fake:
        yield fake


@pytest.fixture
def wa_settings(settings: Settings, graph: FakeGraph) -> Settings:
    return whatsapp_settings(settings, graph)


@pytest.fixture
def wa_app(wa_settings: Settings) -> Flask:
    return create_app(wa_settings)


@pytest.fixture
def twilio_phone(wa_app: Flask) -> Callable[[str], TwilioWhatsAppPhone]:
    client = wa_app.test_client()
    return lambda msisdn: TwilioWhatsAppPhone(client, msisdn)


@pytest.fixture
def meta_phone(wa_app: Flask, graph: FakeGraph) -> Callable[[str], MetaWhatsAppPhone]:
    client = wa_app.test_client()
    return lambda msisdn: MetaWhatsAppPhone(client, graph, msisdn)
