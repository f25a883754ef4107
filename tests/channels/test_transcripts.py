"""Golden transcripts: conversations kept as data in ``tests/transcripts/*.yaml``, replayed by one runner
over every channel they name (USSD on every session store, SMS through the fake Africa's Talking API,
WhatsApp through Twilio's signed webhook (``whatsapp``: TwiML) and through Meta's (``whatsapp_meta``: the
messages the fake Graph API was asked to send, buttons and lists as ``whatsapp_phones`` reads them), the web,
the chatbot through the rasa-sdk action server), each rendered in its channel's format (the chatbot's
text, then one ``[payload] title`` line per button; a chatbot ``send`` of ``/intent`` is a message
whose intent Rasa recognised as ``intent``).
``pytest --update-transcripts`` rewrites the expected screens on
purpose (review the diff before committing it).

A step is ``send`` and ``expect``. Either may be one value for every channel or a mapping by channel;
a step whose ``send`` names other channels only is skipped on this one (USSD dials, SMS starts with
a command). ``send: null`` on USSD dials the service code; on WhatsApp it is a greeting (``Bonjour``),
which opens the main menu as a dial does; on the web it opens ``/web/`` signed in (with the code the fake
SMS provider caught), and a screen is the page's visible text. A transcript's channels are those its
``expect`` mappings name (USSD alone when they are plain text)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from sanic import Sanic

from app.actions_server import build_action_app
from app.factory import create_app
from engine import MemorySessionStore
from tests.support.fake_africastalking import fake_africastalking
from tests.support.fake_graph import fake_graph

from ..support.engine import UssdPhone
from ..web_fallback.web_visitor import signed_in_visitor
from .rasa_chat import RasaChat
from .sms_phone import SmsPhone
from .whatsapp_phones import MetaWhatsAppPhone, TwilioWhatsAppPhone, whatsapp_settings

TRANSCRIPTS = sorted((Path(__file__).resolve().parents[1] / "transcripts").glob("*.yaml"))
_MISSING = object()
GREETING = "Bonjour"


class _Literal(str):
    pass


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


def _channels(transcript: dict[str, Any]) -> list[str]:
    named = {c for step in transcript["steps"] if isinstance(step["expect"], dict) for c in step["expect"]}
    return sorted(named) or ["ussd"]


def _for(value: Any, channel: str) -> Any:
    if isinstance(value, dict):
        return value.get(channel, _MISSING)
    return value


def _rasa_sender(settings: Any, phone: str, stack: ExitStack) -> Callable[[Any], str]:
    """A chatbot user whose front channel vouches for ``phone``, talking to a fresh action server."""
    action_app = build_action_app(replace(settings, rasa_action_token="transcripts", rasa_identity_secret="t"))
    stack.callback(Sanic.unregister_app, action_app)
    chat = RasaChat(action_app, "transcripts", f"transcript-{phone}", phone, "t")

    def send(value: Any) -> str:
        text = str(value)
        said = chat.say("", intent=text[1:]) if text.startswith("/") else chat.say(text)
        return "\n".join([said, *(f"[{b['payload']}] {b['title']}" for b in chat.buttons)])
    return send


CASES = [(path, channel, store) for path in TRANSCRIPTS
         for channel in _channels(yaml.safe_load(path.read_text(encoding="utf-8")))
         for store in (("redis", "memory") if channel == "ussd" else ("redis",))]


@pytest.mark.parametrize(("path", "channel", "store"), CASES,
                         ids=[f"{p.stem}-{c}-{s}" for p, c, s in CASES])
def test_transcript(path: Path, channel: str, store: str, settings, request: pytest.FixtureRequest) -> None:
    transcript = yaml.safe_load(path.read_text(encoding="utf-8"))
    updating = request.config.getoption("--update-transcripts")
    with ExitStack() as stack:
        fake = stack.enter_context(fake_africastalking())
        graph = stack.enter_context(fake_graph())
        settings = replace(whatsapp_settings(settings, graph), at_api_key=fake.api_key, at_api_url=fake.url)
        app = create_app(settings, store=MemorySessionStore() if store == "memory" else None)
        send: Callable[[Any], str]
        if channel == "ussd":
            ussd = UssdPhone(app.test_client(), transcript["phone"])
            send = lambda value: ussd.dial() if value is None else ussd.answer(str(value))
        elif channel == "whatsapp":
            twilio = TwilioWhatsAppPhone(app.test_client(), transcript["phone"])
            send = lambda value: "\n---\n".join(twilio.send(GREETING if value is None else str(value)))
        elif channel == "whatsapp_meta":
            meta = MetaWhatsAppPhone(app.test_client(), graph, transcript["phone"])
            send = lambda value: "\n---\n".join(meta.send(GREETING if value is None else str(value)))
        elif channel == "web":
            web = signed_in_visitor(app, settings, fake, transcript["phone"])
            send = lambda value: web.open() if value is None else web.press(str(value))
        elif channel == "rasa":
            send = _rasa_sender(settings, transcript["phone"], stack)
        else:
            sms = SmsPhone(app.test_client(), fake, transcript["phone"])
            send = lambda value: "\n---\n".join(sms.send(str(value)))
        seen: list[tuple[dict[str, Any], str]] = []
        for step in transcript["steps"]:
            value = _for(step["send"], channel)
            if value is _MISSING:
                continue
            screen = send(value)
            seen.append((step, screen))
            if not updating:
                assert screen == _for(step["expect"], channel), f"{path.name} [{channel}]: after sending {value!r}"
    if updating and store == "redis":
        for step, screen in seen:
            if isinstance(step["expect"], dict):
                step["expect"][channel] = screen
            else:
                step["expect"] = screen
        for step in transcript["steps"]:  # every screen written as a block, whichever run wrote it
            expect = step["expect"]
            step["expect"] = ({c: _Literal(v) for c, v in expect.items()} if isinstance(expect, dict)
                              else _Literal(expect))
        dumper = yaml.SafeDumper
        dumper.add_representer(_Literal, _literal)
        header = "".join(line + "\n" for line in path.read_text(encoding="utf-8").splitlines()
                         if line.startswith("#"))
        path.write_text(header + yaml.dump(transcript, Dumper=dumper, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
