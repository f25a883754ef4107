"""E-mail that says how to stop it: the ``LetterSender`` the dispatcher uses for the ``email`` channel.

Each message but an address's own code carries a one-click unsubscribe link (RFC 8058): the
``List-Unsubscribe`` header with its HTTPS URL, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
and the same link under the text, in the customer's language. The link stops the message's topic (its
opt-in topic, its kind, or all e-mail for receipts and notices) for that address; a stopped topic is
refused here (``Rejected("unsubscribed")``), so the dispatcher sends it by SMS instead.
Without a server key (``SECRET_KEY``) no link could be checked by another process: none is added.
"""

from __future__ import annotations

from backend_clients.africastalking_sms import SentSms
from backend_clients.smtp_email import SmtpEmail
from dialogs.backends import Rejected
from web_fallback.customer.unsubscribe_links import UnsubscribeLinks, footer

from .notify import Letter
from .storage.email_stops import SqlEmailStops

__all__ = ["UnsubscribableEmail"]


class UnsubscribableEmail:
    def __init__(self, smtp: SmtpEmail, stops: SqlEmailStops, links: UnsubscribeLinks | None) -> None:
        self._smtp, self._stops, self._links = smtp, stops, links

    def send(self, to: str, text: str) -> SentSms:
        """A message about nothing in particular: no link (the dispatcher sends letters)."""
        return self._smtp.send(to, text)

    def send_letter(self, to: str, text: str, letter: Letter) -> SentSms:
        if letter.topic is None:
            return self._smtp.send(to, text)
        if self._stops.stopped(to, letter.topic):
            raise Rejected("unsubscribed")
        if self._links is None:
            return self._smtp.send(to, text)
        url = self._links.url(to, letter.topic, letter.language)
        headers = {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        return self._smtp.send(to, f"{text}\n\n-- \n{footer(letter.language, letter.topic, url)}",
                               subject=text.split("\n", 1)[0][:78], headers=headers)
