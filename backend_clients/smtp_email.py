"""Sending e-mail over SMTP (``SMTP_URL``: ``smtp://user:password@host:port`` or ``smtps://``).

The standard library's ``smtplib`` is the client: a message per call, STARTTLS when the
server offers it on ``smtp://``. Permanent refusals (5xx) are ``Rejected``; a server that
cannot be reached or answers 4xx is ``BackendUnavailable``.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from collections.abc import Mapping
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from dialogs.backends import BackendUnavailable, Rejected

from .africastalking_sms import SentSms

__all__ = ["SmtpEmail"]

log = logging.getLogger(__name__)


class SmtpEmail:
    def __init__(self, url: str, sender: str, timeout: float = 10.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:password@host:port")
        self._secure = parsed.scheme == "smtps"
        self._host, self._port = parsed.hostname, parsed.port or (465 if self._secure else 25)
        self._user = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else None
        self._sender, self._timeout = sender, timeout

    def send(self, to: str, text: str, subject: str = "", headers: Mapping[str, str] | None = None) -> SentSms:
        """``headers``: more header fields (``List-Unsubscribe`` ...); the subject is the text's first line."""
        message = EmailMessage()
        message_id = f"<{uuid.uuid4().hex}@{self._sender.split('@')[-1]}>"
        message["From"], message["To"], message["Message-ID"] = self._sender, to, message_id
        message["Subject"] = subject or text.split("\n", 1)[0][:78]
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(text)
        try:
            server: smtplib.SMTP
            if self._secure:
                server = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout,
                                          context=ssl.create_default_context())
            else:
                server = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            with server:
                if not self._secure and server.has_extn("starttls"):
                    server.starttls(context=ssl.create_default_context())
                if self._user:
                    server.login(self._user, self._password or "")
                server.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise Rejected("recipient_refused") from None
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise Rejected(f"smtp_{exc.smtp_code}") from None
            raise BackendUnavailable(f"smtp {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("SMTP server unreachable: %s", type(exc).__name__)
            raise BackendUnavailable("smtp unreachable") from None
        return SentSms(message_id, "sent")
