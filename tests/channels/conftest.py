"""WhatsApp fixtures: the product with both WhatsApp providers configured against a fake Graph API on
loopback (Twilio's Messages API too), and handsets for each provider (``tests/channels/whatsapp_phones.py``). SMS fixtures: the product
sending through a fake Africa's Talking SMS API on loopback, and handsets texting it (``sms_phone.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from flask import Flask

from app.factory import create_app
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking, fake_africastalking
from tests.support.fake_graph import FakeGraph, fake_graph
from tests.support.fake_twilio import FakeTwilio, fake_twilio

from .sms_phone import SmsPhone
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


@pytest.fixture
def fake_at() -> Iterator[FakeAfricasTalking]:
    with fake_africastalking() as fake:
        yield fake


@pytest.fixture
def sms_settings(settings: Settings, fake_at: FakeAfricasTalking) -> Settings:
    return replace(settings, at_username=fake_at.username, at_api_key=fake_at.api_key, at_api_url=fake_at.url)


@pytest.fixture
def sms_app(sms_settings: Settings) -> Flask:
    return create_app(sms_settings)


@pytest.fixture
def texter(sms_app: Flask, fake_at: FakeAfricasTalking) -> Callable[[str], SmsPhone]:
    client = sms_app.test_client()
    return lambda msisdn: SmsPhone(client, fake_at, msisdn)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """Twilio's Messages API faked on loopback (``whatsapp_phones.twilio_sending`` points the product at it)."""
    with fake_twilio() as fake:
        yield fake
