"""E-mail through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from backend_clients.smtp_email import SmtpEmail
from dialogs.backends import BackendUnavailable, Rejected
from tests.support.ports import closed_port, on_free_port


class Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str, options: Any) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()

    def started(port: int) -> Controller:
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        controller.start()   # OSError EADDRINUSE when the port was taken meanwhile: on_free_port tries another
        return controller

    controller = on_free_port(started)
    try:
        yield mailbox, controller.port
    finally:
        controller.stop()


def test_an_email_reaches_the_smtp_server(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    sent = SmtpEmail(f"smtp://127.0.0.1:{port}", "no-reply@elecnet.example").send(
        "awa@example.com", "Paiement reçu: 5 500 FCFA.\nMerci.", subject="Reçu de paiement")
    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == ["awa@example.com"] and envelope.mail_from == "no-reply@elecnet.example"
    message = message_from_bytes(envelope.content if isinstance(envelope.content, bytes) else b"",
                                policy=policy.default)
    assert message["Subject"] == "Reçu de paiement" and message["Message-ID"] == sent.message_id
    assert message.get_content().startswith("Paiement reçu: 5 500 FCFA.")


def test_a_refused_recipient_is_refused_for_good(smtp: tuple[Mailbox, int]) -> None:
    _, port = smtp
    with pytest.raises(Rejected):
        SmtpEmail(f"smtp://127.0.0.1:{port}", "no-reply@elecnet.example").send("x@refused.example", "hi")


def test_an_unreachable_smtp_server_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        SmtpEmail(f"smtp://127.0.0.1:{closed_port()}", "no-reply@elecnet.example", timeout=1).send("a@b.example", "x")
