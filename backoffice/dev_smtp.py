"""A development SMTP server whose mail lands on the back office's ``/dev/sms`` page, never in a mailbox.

``make run`` without ``SMTP_URL`` points the product's e-mail sender here (``BACKOFFICE_DEV_SMTP_PORT``,
loopback only), so a customer trying the e-mail channel sees the confirmation code and the messages at
``/dev/sms``. Development mode only; it needs ``aiosmtpd`` (installed with the development extras, which
``make install`` installs), and is simply not started without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email import message_from_bytes, policy
from typing import Any

from .dev_sms import DevSmsSink

__all__ = ["start_dev_smtp"]

log = logging.getLogger("backoffice.dev_smtp")


class _Handler:
    def __init__(self, sink: DevSmsSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = message_from_bytes(content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content().strip() if body is not None else ""
        for rcpt in envelope.rcpt_tos:
            self._sink.record_email(str(rcpt), str(envelope.mail_from or "-"), str(message.get("Subject", "")), text)
        return "250 Message accepted for delivery"


def start_dev_smtp(sink: DevSmsSink, port: int) -> Callable[[], None] | None:
    """Serve SMTP on 127.0.0.1:``port`` into ``sink``; the function that stops it, or None without aiosmtpd."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        log.warning("aiosmtpd is not installed: no development SMTP server (e-mails wait in the outbox)")
        return None
    # aiosmtpd logs every envelope (each recipient's address) at INFO: personal data, kept out of the log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=port)
    try:
        controller.start()
    except Exception as exc:  # noqa: BLE001 - port taken ...: a development convenience must not stop the back office
        log.warning("no development SMTP server on port %d (%s): e-mails wait in the outbox", port,
                    type(exc).__name__)
        return None
    return controller.stop
