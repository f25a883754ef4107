"""A real SMTP server on loopback (aiosmtpd) that keeps what it received, for e-mail notifications.

``messages_to(address)`` gives the bodies delivered to that address, oldest first; an address at
``refused.example`` is refused (550) like a mailbox that does not exist.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from .ports import on_free_port

__all__ = ["FakeSmtp", "fake_smtp", "mail"]


@dataclass
class FakeSmtp:
    url: str = ""
    received: list[tuple[str, EmailMessage]] = field(default_factory=list)   # (recipient, message)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str, options: Any) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = message_from_bytes(content, policy=policy.default)
        with self._lock:
            self.received += [(rcpt, message) for rcpt in envelope.rcpt_tos]
        return "250 Message accepted for delivery"

    def messages_to(self, address: str) -> list[str]:
        with self._lock:
            return [m.get_content().strip() for rcpt, m in self.received if rcpt == address]


def _started(controller: Controller) -> Controller:
    """``controller`` serving (its start raises OSError EADDRINUSE when its port was taken meanwhile)."""
    controller.start()
    return controller


@contextmanager
def fake_smtp() -> Iterator[FakeSmtp]:
    fake = FakeSmtp()
    controller = on_free_port(lambda port: _started(Controller(fake, hostname="127.0.0.1", port=port)))
    fake.url = f"smtp://127.0.0.1:{controller.port}"
    try:
        yield fake
    finally:
        controller.stop()


@pytest.fixture
def mail() -> Iterator[FakeSmtp]:
    """An SMTP server on loopback that keeps what it receives, for one test (a plugin of tests/conftest.py)."""
    with fake_smtp() as fake:
        yield fake
