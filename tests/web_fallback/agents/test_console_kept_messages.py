"""A customer's messages kept while the service could not run them show on their page in the agents' console
until the worker answers them: when, on which channel, waiting; never what the customer wrote (it stays
sealed). Against a redis-server of the test's own (killed and started again), Twilio's and Africa's Talking's
fakes on loopback, the real back office and the product's database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from app import worker
from app.factory import create_app
from app.settings import Settings
from tests.channels.sms_phone import SmsPhone
from tests.channels.whatsapp_phones import TwilioWhatsAppPhone, twilio_sending
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_twilio import FakeTwilio, fake_twilio
from tests.support.throwaway_redis import ThrowawayRedis

from .conftest import sign_in

AWA = "+221770000001"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as fake:
        yield fake


@pytest.fixture
def kept_settings(agents_settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
                  throwaway_redis: ThrowawayRedis) -> Settings:
    return replace(twilio_sending(agents_settings, twilio, provider), redis_url=throwaway_redis.url)


def customer_page(client: FlaskClient, token: str) -> str:
    response = client.post("/console/lookup", data={"kind": "phone", "q": AWA, "csrf_token": token},
                           follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def kept_table(page: str) -> str:
    """The console's section of kept messages, up to the next heading."""
    start = page.index("<h3>Messages kept, not answered yet</h3>")
    return page[start:page.index("<h3>", start + 4)]


def test_an_agent_sees_a_customers_kept_messages_until_the_worker_answers_them(
        kept_settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking,
        throwaway_redis: ThrowawayRedis) -> None:
    app = create_app(kept_settings)
    on_whatsapp = TwilioWhatsAppPhone(app.test_client(), AWA, token=twilio.auth_token)
    by_sms = SmsPhone(app.test_client(), provider, AWA)
    throwaway_redis.stop()                        # the session store is gone: both messages are kept
    assert on_whatsapp.send("SOLDE 1000001") == [] and on_whatsapp.last_status == 200
    assert by_sms.send("CONSO 1000001") == [] and by_sms.last_status == 200
    throwaway_redis.start()

    agent = app.test_client()
    token = sign_in(agent, "Fatou", "agent")
    kept = kept_table(customer_page(agent, token))
    assert '<table aria-label="kept messages">' in kept
    rows = kept.split("<tr>")[2:]                 # after the header row
    assert len(rows) == 2
    assert "WhatsApp (Twilio)" in rows[0] and "SMS" in rows[1]
    assert all("waiting" in row and "sealed (not shown)" in row for row in rows)
    assert "SOLDE" not in kept and "CONSO" not in kept and "1000001" not in kept   # the text stays sealed

    worker.run_once(kept_settings)                # both answered, each on its channel
    assert len(twilio.sent) == 1 and len(provider.messages_to(AWA)) == 1
    assert "No message waiting." in kept_table(customer_page(agent, token))
