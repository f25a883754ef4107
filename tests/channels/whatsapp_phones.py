"""Handsets on WhatsApp, talking to the product the way each provider does.

``TwilioWhatsAppPhone`` posts Twilio's signed form and reads the TwiML answer; ``MetaWhatsAppPhone``
posts Meta's signed JSON event and reads what the fake Graph API was asked to send back meanwhile.
Both sign with the providers' documented formulas, written here (not the product's code):

- Twilio: base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value, sorted by name));
- Meta: ``sha256=`` + hex(HMAC-SHA256(app secret, raw body)).

``send(text)`` returns the replies as the customer reads them, ``tap(key)`` presses a button or a
list row the last reply offered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient

from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking
from tests.support.fake_graph import FakeGraph, readable
from tests.support.fake_twilio import FakeTwilio

_ids = itertools.count(1)

TWILIO_PUBLIC_URL = "https://elecnet.example.org"
TWILIO_TOKEN = "test-twilio-auth-token"
META_SECRET = "test-meta-app-secret"
META_VERIFY = "test-meta-verify-token"
PHONE_NUMBER_ID = "106540352242922"
TWILIO_NUMBER = "+14155238886"      # our WhatsApp sender at Twilio (``TWILIO_WHATSAPP_FROM`` in the tests)


def whatsapp_settings(settings: Settings, graph: FakeGraph) -> Settings:
    """``settings`` with both WhatsApp providers configured: Twilio's token and public URL, Meta's app
    secret, verify token and access token, and the fake Graph API as Meta's address."""
    return replace(settings, twilio_auth_token=TWILIO_TOKEN, twilio_webhook_url=TWILIO_PUBLIC_URL,
                   meta_app_secret=META_SECRET, meta_verify_token=META_VERIFY,
                   meta_access_token=graph.access_token, graph_api_url=graph.api_url)


def twilio_sending(settings: Settings, twilio: FakeTwilio, provider: FakeAfricasTalking) -> Settings:
    """``settings`` with WhatsApp in and out through Twilio's fake (one account: its token signs the webhooks
    and sends), SMS through Africa's Talking's fake (to see what goes by SMS), quiet hours off (tests run at
    any hour)."""
    return replace(settings, twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token,
                   twilio_whatsapp_from=TWILIO_NUMBER, twilio_api_url=twilio.url,
                   twilio_webhook_url=TWILIO_PUBLIC_URL, at_api_key=provider.api_key,
                   at_username=provider.username, at_api_url=provider.url, quiet_hours="")


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def twilio_reports(client: FlaskClient, twilio: FakeTwilio) -> list[int]:
    """Twilio posting, signed, each status its fake has for our messages (then none are left), to the status
    callback URL given with each; the product's answers."""
    answers = []
    while twilio.callbacks:
        url, form = twilio.callbacks.pop(0)
        answers.append(post_twilio_status(client, twilio.auth_token, url, form))
    return answers


def post_twilio_status(client: FlaskClient, token: str, url: str, form: dict[str, str],
                       signature: str | None = None) -> int:
    """Twilio posting ``form`` to the status callback ``url`` (its query string included), signed under ``token``
    unless ``signature`` is given; the product's answer."""
    parts = urlsplit(url)
    headers = {"X-Twilio-Signature": twilio_signature(token, url, form) if signature is None else signature}
    return client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=form,
                       headers=headers).status_code


def meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def twiml_actions(xml: str) -> list[tuple[str, str]]:
    """Each ``<Message>``'s status callback as Twilio reads it: its ``action`` URL and ``method``."""
    return [(m.get("action", ""), m.get("method", "")) for m in ET.fromstring(xml).findall("Message")]


def twiml_messages(xml: str) -> list[str]:
    root = ET.fromstring(xml)
    assert root.tag == "Response", xml
    return [m.text or "" for m in root.findall("Message")]


class TwilioWhatsAppPhone:
    """``ours``: our WhatsApp number at Twilio this phone writes to (``To``)."""

    def __init__(self, client: FlaskClient, msisdn: str, token: str = TWILIO_TOKEN, ours: str = TWILIO_NUMBER) -> None:
        self.client, self.msisdn, self.token, self.ours = client, msisdn, token, ours
        self.last_sid = ""
        self.last_status = 0
        self.last_twiml = ""

    def form(self, text: str, sid: str | None = None, **extra: str) -> dict[str, str]:
        self.last_sid = sid or f"SM{next(_ids):032x}"
        return {"MessageSid": self.last_sid, "SmsMessageSid": self.last_sid, "AccountSid": "AC" + "1" * 32,
                "From": f"whatsapp:{self.msisdn}", "To": f"whatsapp:{self.ours}", "Body": text,
                "NumMedia": "0", "NumSegments": "1", "ProfileName": "Awa", "WaId": self.msisdn.lstrip("+"),
                "MessageType": "text", "ApiVersion": "2010-04-01", **extra}

    def post(self, form: dict[str, str], signature: str | None = None) -> list[str]:
        url = f"{TWILIO_PUBLIC_URL}/whatsapp/twilio"
        headers = {"X-Twilio-Signature": twilio_signature(self.token, url, form) if signature is None else signature}
        # Closed once read, as a server closes a response it has sent (what runs after the answer runs then).
        with self.client.post("/whatsapp/twilio", data=form, headers=headers) as response:
            self.last_status = response.status_code
            assert response.mimetype in ("application/xml", "text/xml"), response.mimetype
            self.last_twiml = response.get_data(as_text=True)
        return twiml_messages(self.last_twiml)

    def send(self, text: str, sid: str | None = None) -> list[str]:
        replies = self.post(self.form(text, sid))
        for reply in replies:
            assert len(reply) <= 1600, len(reply)
        return replies

    def say(self, text: str) -> str:
        replies = self.send(text)
        assert len(replies) == 1, replies
        return replies[0]

    def tap(self, key: str, title: str = "") -> str:
        [reply] = self.post(self.form(title or key, ButtonPayload=f"opt:{key}", ButtonText=title or key,
                                      MessageType="button"))
        return reply


class MetaWhatsAppPhone:
    """``phone_number_id``: our number at Meta this phone writes to (the events' ``metadata``)."""

    def __init__(self, client: FlaskClient, graph: FakeGraph, msisdn: str, secret: str = META_SECRET,
                 phone_number_id: str = PHONE_NUMBER_ID) -> None:
        self.client, self.graph, self.secret = client, graph, secret
        self.phone_number_id = phone_number_id
        self.wa_id = msisdn.lstrip("+")
        self.last_id = ""
        self.last_status = 0

    def event(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "15550783881", "phone_number_id": self.phone_number_id},
                      "contacts": [{"profile": {"name": "Awa"}, "wa_id": self.wa_id}],
                      "messages": [message]}}]}]}

    def message(self, kind: str, part: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
        self.last_id = message_id or f"wamid.HBgL{next(_ids):020d}=="
        return {"from": self.wa_id, "id": self.last_id, "timestamp": str(int(time.time())), "type": kind, kind: part}

    def post_raw(self, body: bytes, signature: str | None = None) -> int:
        headers = {"X-Hub-Signature-256": meta_signature(self.secret, body) if signature is None else signature}
        # Closed once read, as a server closes a response it has sent (what runs after the answer runs then).
        with self.client.post("/whatsapp/meta", data=body, headers=headers,
                              content_type="application/json") as response:
            self.last_status = response.status_code
            assert response.is_json, response.get_data(as_text=True)
        return self.last_status

    def post(self, event: dict[str, Any]) -> list[str]:
        before = len(self.graph.messages_to(self.wa_id))
        self.post_raw(json.dumps(event).encode())
        sent = self.graph.messages_to(self.wa_id)[before:]
        for message in sent:
            assert message["phone_number_id"] == self.phone_number_id
        return [readable(m) for m in sent]

    def send(self, text: str, message_id: str | None = None) -> list[str]:
        return self.post(self.event(self.message("text", {"body": text}, message_id)))

    def say(self, text: str) -> str:
        replies = self.send(text)
        assert len(replies) == 1, replies
        return replies[0]

    def status(self, message_id: str, status: str, code: int | None = None) -> int:
        """Meta's status event about one of our messages to this phone (``failed`` with an error ``code``),
        posted to the webhook as Meta signs it; the product's answer."""
        event = self.event(self.message("text", {"body": "x"}))
        value = event["entry"][0]["changes"][0]["value"]
        del value["messages"], value["contacts"]
        value["statuses"] = [{"id": message_id, "status": status, "timestamp": str(int(time.time())),
                              "recipient_id": self.wa_id, **({"errors": [{"code": code}]} if code else {})}]
        return self.post_raw(json.dumps(event).encode())

    def last_sent(self) -> dict[str, Any]:
        return self.graph.messages_to(self.wa_id)[-1]

    def tap(self, key: str) -> str:
        """Press the button or list row of the last reply whose id is option ``key``."""
        interactive = self.last_sent()["interactive"]
        if interactive["type"] == "button":
            [title] = [b["reply"]["title"] for b in interactive["action"]["buttons"] if b["reply"]["id"] == f"opt:{key}"]
            part = {"type": "button_reply", "button_reply": {"id": f"opt:{key}", "title": title}}
        else:
            [title] = [r["title"] for s in interactive["action"]["sections"] for r in s["rows"]
                       if r["id"] == f"opt:{key}"]
            part = {"type": "list_reply", "list_reply": {"id": f"opt:{key}", "title": title}}
        [reply] = self.post(self.event(self.message("interactive", part)))
        return reply
