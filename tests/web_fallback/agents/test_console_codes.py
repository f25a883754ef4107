"""The agents' console never shows a one-time code: a customer asks for a web sign-in code, the worker
sends it, and the agent who opens the customer's file sees the notification, not the code."""

from __future__ import annotations

import re
from dataclasses import replace

from flask.testing import FlaskClient

from app.factory import create_app
from app.settings import Settings
from app.worker import run_once
from tests.support.fake_africastalking import fake_africastalking

from ..web_visitor import WebVisitor
from .conftest import sign_in

AWA = "+221770000001"


def test_the_customer_file_lists_the_code_message_without_the_code(agents_settings: Settings) -> None:
    with fake_africastalking() as provider:
        settings = replace(agents_settings, at_api_key=provider.api_key, at_username=provider.username,
                           at_api_url=provider.url, quiet_hours="")
        app = create_app(settings)
        customer = WebVisitor(app.test_client(), "127.0.0.1")
        customer.open()
        customer.ask_code("77 000 00 01")
        run_once(settings)
        [message] = provider.messages_to(AWA)
    found = re.search(r"\b(\d{6})\b", message)
    assert found, message
    client: FlaskClient = app.test_client()
    token = sign_in(client, "Awa", "agent")
    page = client.post("/console/lookup", data={"kind": "phone", "q": AWA, "csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "web_code" in page and found.group(1) not in page
