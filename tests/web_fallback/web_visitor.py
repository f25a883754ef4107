"""A visitor of the web fallback through the Flask test client: reads pages the way a person does
(the visible text of ``<main>``, buttons as ``1. Label``) and submits their forms with the page's
hidden fields (CSRF token, hop id), so tests read like transcripts of a browser session."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.factory import build_dispatcher
from app.settings import Settings
from tests.support.fake_africastalking import FakeAfricasTalking

__all__ = ["WebVisitor", "signed_in_visitor", "visible_text"]


class _Text(HTMLParser):
    """The visible lines of ``<main>``: one per paragraph, label, button or link."""

    _BLOCKS = frozenset({"p", "li", "button", "label", "h1", "a", "nav", "div", "form"})

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._current: list[str] = []
        self._in_main = False

    def _flush(self) -> None:
        line = " ".join("".join(self._current).split())
        if line:
            self.lines.append(line)
        self._current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "main":
            self._in_main = True
        if tag in self._BLOCKS:
            self._flush()
        if self._in_main and tag == "input" and dict(attrs).get("type") not in ("hidden",):
            self._flush()
            self.lines.append(f"[{dict(attrs).get('type')} {dict(attrs).get('name')}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BLOCKS or tag == "main":
            self._flush()
        if tag == "main":
            self._in_main = False

    def handle_data(self, data: str) -> None:
        if self._in_main:
            self._current.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.lines)


class WebVisitor:
    def __init__(self, client: FlaskClient, address: str = "127.0.0.1") -> None:
        self.client = client
        self.environ = {"REMOTE_ADDR": address}
        self.html = ""
        self.status = 0
        self.response: TestResponse | None = None

    # ------------------------------------------------------------ reading
    def open(self, path: str = "/web/") -> str:
        self._keep(self.client.get(path, environ_base=self.environ))
        return self.page()

    def page(self) -> str:
        return visible_text(self.html)

    def field(self, name: str, form_action: str | None = None) -> str:
        found = re.search(rf'name="{name}" value="([^"]*)"', self.html)
        assert found, f"no {name} on the page:\n{self.page()}"
        return found.group(1)

    def _keep(self, response: TestResponse) -> TestResponse:
        if response.status_code == 303:
            response = self.client.get(response.headers["Location"], environ_base=self.environ)
        self.response, self.status, self.html = response, response.status_code, response.get_data(as_text=True)
        return response

    # ------------------------------------------------------------ acting
    def post(self, path: str, **fields: str) -> str:
        data = {"csrf": self.field("csrf"), **fields}
        self._keep(self.client.post(path, data=data, environ_base=self.environ))
        return self.page()

    def ask_code(self, phone: str) -> str:
        return self.post("/web/code", phone=phone)

    def sign_in(self, code: str) -> str:
        return self.post("/web/sign-in", code=code)

    def choose(self, label: str) -> str:
        """Press the button whose text contains ``label`` (an option, Back, Home, More)."""
        for value, text in re.findall(r'<button type="submit" name="choice" value="([0-9]+)"[^>]*>(.*?)</button>',
                                      self.html, re.DOTALL):
            if label in re.sub(r"<[^>]+>", "", text):
                return self.post("/web/", choice=value, hop=self.field("hop"))
        raise AssertionError(f"no button {label!r} on the page:\n{self.page()}")

    def answer(self, value: str) -> str:
        return self.post("/web/", answer=value, hop=self.field("hop"))

    def press(self, value: str) -> str:
        """Send ``value`` as the page's answer: the button with that number, or the field's text."""
        if re.search(rf'name="choice" value="{re.escape(value)}"', self.html) or 'name="answer"' not in self.html:
            return self.post("/web/", choice=value, hop=self.field("hop"))
        return self.answer(value)

    def sign_out(self) -> str:
        return self.post("/web/sign-out")


def signed_in_visitor(app: Flask, settings: Settings, fake: FakeAfricasTalking, number: str) -> WebVisitor:
    """A browser signed in as ``number`` with the code the worker sent through the fake SMS provider."""
    visitor = WebVisitor(app.test_client())
    visitor.open()
    visitor.ask_code(number)
    build_dispatcher(settings, app.extensions["parts"]["db"]).run_once()
    found = re.search(r"\b(\d{6})\b", [m for m in fake.messages_to(number) if "code" in m][-1])
    assert found, fake.messages_to(number)
    visitor.sign_in(found.group(1))
    assert visitor.status == 200, visitor.page()
    return visitor
