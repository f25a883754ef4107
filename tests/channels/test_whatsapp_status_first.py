# ruff: noqa: F811 - fixtures imported by name are arguments of the tests
"""A provider's status about a WhatsApp message can reach the product before the worker has recorded that
message as sent: the send API answered, the worker's commit is not done yet, and the status webhook is served
by another process. The fakes here post the status (signed, as Meta and Twilio sign it) before answering the
send, so the report is always first. An "outside the 24-hour window" report kept that way still brings the
prepaid token by SMS, exactly once, and erases it after; a "delivered" one leaves the receipt delivered and its
token erased. Never the token nor the number in clear in a log line."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from app import worker
from app.factory import create_app
from app.settings import Settings
from tests.support.clock import SettableClock
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph
from tests.support.fake_twilio import FakeTwilio
from tests.support.outbox_rows import raw_rows

from .test_whatsapp_kept_secrets import (  # noqa: F401 - clock, meta, handset: fixtures of both modules
    PREPAID,
    RECEIPT_FR,
    SECRET_KEY,
    TOKEN,
    clock,
    handset,
    meta,
    token_receipt_on_whatsapp,
)
from .whatsapp_phones import MetaWhatsAppPhone, twilio_reports, twilio_sending


def meta_reports_first(graph: FakeGraph, handset: MetaWhatsAppPhone, status: str,
                       code: int | None = None) -> list[int]:
    """Meta posts ``status`` about each message it takes before answering the send; the product's answers."""
    answers: list[int] = []

    def report(message: dict[str, Any]) -> None:
        answers.append(handset.status(message["id"], status, code))
    graph.before_answer = report
    return answers


def clean_logs(text: str) -> bool:
    return TOKEN not in text and PREPAID.lstrip("+") not in text


def test_meta_saying_the_window_closed_before_answering_the_send_still_brings_the_token_by_sms_once(
        meta, graph, provider, handset, caplog):
    caplog.set_level(logging.DEBUG)
    queue = token_receipt_on_whatsapp(meta)
    early = meta_reports_first(graph, handset, "failed", 131047)
    assert worker.run_once(meta).get("notifications_sent") == 1
    assert early == [200]                                           # the status came first
    [receipt] = graph.messages_to(PREPAID.lstrip("+"))
    assert queue.get(1)["status"] == "pending" and queue.get(1)["channel"] == "sms"
    assert queue.get(1)["sealed"] and TOKEN not in raw_rows(meta.database_url)

    assert worker.run_once(meta).get("notifications_sent") == 1
    assert provider.messages_to(PREPAID) == [RECEIPT_FR]
    assert queue.get(1)["sealed"] is None                           # sent by SMS: erased

    graph.before_answer = None
    assert handset.status(receipt["id"], "failed", 131047) == 200   # Meta delivers the event again
    assert worker.run_once(meta).get("notifications_sent") is None
    assert len(provider.sent) == 1 and len(graph.sent) == 1
    assert clean_logs(caplog.text)


def test_twilio_calling_back_undelivered_before_answering_the_send_still_brings_the_token_by_sms_once(
        settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking, clock: SettableClock,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    twilio_settings = replace(twilio_sending(settings, twilio, provider), secret_key=SECRET_KEY, clock=clock)
    twilio.window_closed.add(PREPAID)
    queue = token_receipt_on_whatsapp(twilio_settings)
    client = create_app(twilio_settings).test_client()
    early: list[int] = []
    twilio.before_answer = lambda: early.extend(twilio_reports(client, twilio))   # undelivered, 63016
    assert worker.run_once(twilio_settings).get("notifications_sent") == 1
    assert early == [204]
    assert [m["Body"] for m in twilio.sent] == [RECEIPT_FR]

    assert worker.run_once(twilio_settings).get("notifications_sent") == 1
    assert provider.messages_to(PREPAID) == [RECEIPT_FR]
    assert queue.get(1)["sealed"] is None
    assert worker.run_once(twilio_settings).get("notifications_sent") is None
    assert len(provider.sent) == 1 and len(twilio.sent) == 1
    assert clean_logs(caplog.text)


def test_meta_saying_delivered_before_answering_the_send_leaves_the_receipt_delivered_and_its_token_erased(
        meta, graph, provider, handset, clock):
    queue = token_receipt_on_whatsapp(meta)
    early = meta_reports_first(graph, handset, "delivered")
    assert worker.run_once(meta).get("notifications_sent") == 1
    assert early == [200]
    row = queue.get(1)
    assert row["status"] == "sent" and row["delivery_status"] == "delivered"
    assert row["sealed"] is None                                    # final at once, not an hour later
    clock.advance(minutes=61)
    assert worker.run_once(meta).get("notifications_sent") is None
    assert provider.sent == [] and len(graph.sent) == 1
