# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""A WhatsApp reply Meta reports undelivered (outside the 24-hour window) more than an hour after it went
(``OUTBOX_KEEP_SENT_SECRETS_MINUTES``): a reply that shows no code (a bill summary) still reaches the customer by
SMS, once, since they asked for it and never had it; one that shows a prepaid token is not sent again (its text was
erased after the hour: an old code by SMS would be one more copy of a credential, and stale): it is marked out of
date for agents. Through the webhook's own reply (Meta's Graph API faked on loopback, statuses signed as Meta signs), the
worker on the product's clock, the fake Africa's Talking SMS API."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app import worker
from app.factory import create_app
from app.settings import Settings
from app.storage import make_sessions
from app.storage.models import OutboxEventRow
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph

from .test_whatsapp_inbox import AWA, BALANCE, BALANCE_BUTTONS, START, meta_settings  # noqa: F401
from .whatsapp_phones import MetaWhatsAppPhone

pytestmark = pytest.mark.parametrize("product_clock", [START], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
PREPAID = "+221770000003"
TOKEN = "4821 3907 5612 8473 0195"   # the demo meter's last token, as the balance prints it


def _reply_row(settings: Settings, msisdn: str) -> OutboxEventRow:
    with make_sessions(settings.database_url)() as db:
        return db.scalars(select(OutboxEventRow).where(OutboxEventRow.kind == "whatsapp_reply",
                                                       OutboxEventRow.msisdn == msisdn)).one()


def _an_hour_and_more(settings: Settings, clock: SettableClock) -> None:
    """No word from Meta for an hour: the worker's passes go on (codes kept for a late failure are erased)."""
    clock.advance(minutes=61)
    worker.run_once(settings)


def test_a_bill_summary_reported_outside_the_window_after_an_hour_still_reaches_the_customer_by_sms_once(
        meta_settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    awa = MetaWhatsAppPhone(create_app(meta_settings).test_client(), graph, AWA)
    assert awa.say("SOLDE") == BALANCE_BUTTONS
    sent = awa.last_sent()["id"]
    _an_hour_and_more(meta_settings, product_clock)
    assert _reply_row(meta_settings, AWA).sealed                     # the summary is still kept
    assert awa.status(sent, "failed", 131047) == 200
    product_clock.advance(seconds=2)
    assert worker.run_once(meta_settings)["notifications_sent"] == 1
    assert provider.messages_to(AWA) == [BALANCE]
    assert awa.status(sent, "failed", 131047) == 200                 # Meta saying it again
    product_clock.advance(seconds=2)
    worker.run_once(meta_settings)
    assert provider.messages_to(AWA) == [BALANCE]                     # once


def test_a_reply_showing_a_prepaid_token_reported_outside_the_window_after_an_hour_is_not_sent_again(
        meta_settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    fatou = MetaWhatsAppPhone(create_app(meta_settings).test_client(), graph, PREPAID)
    assert TOKEN in fatou.say("SOLDE")
    sent = fatou.last_sent()["id"]
    _an_hour_and_more(meta_settings, product_clock)
    assert _reply_row(meta_settings, PREPAID).sealed is None          # the token erased after the hour
    assert fatou.status(sent, "failed", 131047) == 200
    product_clock.advance(seconds=2)
    worker.run_once(meta_settings)
    assert provider.messages_to(PREPAID) == []                        # no stale token by SMS
    row = _reply_row(meta_settings, PREPAID)
    assert (row.status, row.channel) == ("expired", "sms")             # kept for agents, with why
    assert (row.last_error or "").startswith("expired: out of date")


def test_a_bill_summary_is_kept_as_long_as_the_operator_set_and_no_longer(
        meta_settings: Settings, graph: FakeGraph, provider: FakeAfricasTalking,
        product_clock: SettableClock) -> None:
    """``OUTBOX_KEEP_PLAIN_REPLIES_HOURS=2``: reported undelivered three hours on, the summary is out of date."""
    settings = dataclasses.replace(meta_settings, outbox_keep_plain_replies_hours=2)
    awa = MetaWhatsAppPhone(create_app(settings).test_client(), graph, AWA)
    assert awa.say("SOLDE") == BALANCE_BUTTONS
    sent = awa.last_sent()["id"]
    _an_hour_and_more(settings, product_clock)
    assert _reply_row(settings, AWA).sealed                          # within its two hours: kept
    product_clock.advance(hours=2)
    worker.run_once(settings)
    assert _reply_row(settings, AWA).sealed is None                   # past them: erased
    assert awa.status(sent, "failed", 131047) == 200
    product_clock.advance(seconds=2)
    worker.run_once(settings)
    assert provider.messages_to(AWA) == []


@pytest.mark.parametrize("wrong", ["abc", "0", "169", "24h"])
def test_a_keep_time_the_product_cannot_use_stops_the_worker_at_start_saying_why(wrong: str, product_clock,
                                                                                 tmp_path) -> None:
    env = {**os.environ, "OUTBOX_KEEP_PLAIN_REPLIES_HOURS": wrong, "SECRET_KEY": "test-key",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'product.db'}"}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "app", "worker", "--once"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 3
    assert (f"OUTBOX_KEEP_PLAIN_REPLIES_HOURS: '{wrong}' is not a whole number of hours from 1 to 168. Not started"
            in done.stderr)
    assert "Traceback" not in done.stderr
