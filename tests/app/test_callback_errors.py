"""The providers' delivery callbacks answer every error in one format, over real HTTP: Africa's Talking
SMS delivery reports (``/sms/africastalking/delivery``) and Twilio status callbacks
(``/whatsapp/twilio/status``) refuse in plain text with the status, as their own refusals do (403, 400),
also when the app refuses before their view runs: a body over the 16 KiB limit (413), another method
(405), a failure (500). Never the JSON of the app's other endpoints."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from app.factory import create_app
from app.settings import Settings
from tests.support.services import serve_wsgi

TOKEN = "report-token"
REPORT = {"id": "ATXid_1", "status": "Success", "phoneNumber": "+221770000001", "networkCode": "60801",
          "retryCount": "0"}
STATUS = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "To": "whatsapp:+221770000001"}
OVERSIZED = {"failureReason": "x" * 20_000}


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    app = create_app(replace(settings, ussd_gateway_token=TOKEN, twilio_auth_token="twilio-token",
                             public_base_url="https://engine.example"))
    with serve_wsgi(app) as url:
        yield url


def _plain(answer: requests.Response, status: int, text: str) -> None:
    assert (answer.status_code, answer.headers["Content-Type"], answer.text) == (
        status, "text/plain; charset=utf-8", text)


def test_delivery_reports_answer_every_error_in_plain_text(served: str):
    url = f"{served}/sms/africastalking/delivery"
    _plain(requests.post(url, data=REPORT, params={"token": "wrong"}, timeout=5), 403, "forbidden")
    _plain(requests.post(url, data={**REPORT, "id": "bad id"}, params={"token": TOKEN}, timeout=5), 400,
           "invalid delivery report")
    _plain(requests.post(url, data={**REPORT, **OVERSIZED}, params={"token": TOKEN}, timeout=5), 413,
           "request entity too large")
    refused = requests.get(url, params={"token": TOKEN}, timeout=5)
    _plain(refused, 405, "method not allowed")
    assert sorted(refused.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
    _plain(requests.post(url, data=REPORT, params={"token": TOKEN}, timeout=5), 200, "OK")


def test_twilio_status_callbacks_answer_every_error_in_plain_text(served: str):
    url = f"{served}/whatsapp/twilio/status"
    _plain(requests.post(url, data=STATUS, headers={"X-Twilio-Signature": "forged"}, timeout=5), 403, "forbidden")
    _plain(requests.post(url, data={**STATUS, **OVERSIZED}, timeout=5), 413, "request entity too large")
    refused = requests.get(url, timeout=5)
    _plain(refused, 405, "method not allowed")
    assert sorted(refused.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]


def test_a_delivery_report_the_database_cannot_keep_gets_a_plain_500(served: str, engine_db: str):
    with sqlite3.connect(engine_db.removeprefix("sqlite:///")) as db:
        db.execute("DROP TABLE delivery_reports")      # the database lost its table: the report cannot be kept
    answer = requests.post(f"{served}/sms/africastalking/delivery", data=REPORT, params={"token": TOKEN}, timeout=5)
    _plain(answer, 500, "internal server error")
