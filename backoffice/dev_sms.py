"""A development sink for SMS (and e-mail): Africa's Talking's messaging API, faked, and a page of what it took.

Only in development mode (``BACKOFFICE_DEV=1``, which ``make run`` sets): without an SMS account,
``make run`` points the product's Africa's Talking SDK here (``AT_API_URL``), so receipts, tokens,
codes and SMS replies leave the outbox and can be read at ``GET /dev/sms`` instead of waiting for
ever. Nothing is sent to anyone.

``POST /dev/africastalking/version1/messaging`` speaks the provider's wire format: a form
(``username``, ``to`` comma-separated, ``message``, ``from``) with the key in the ``apiKey`` header,
answered with ``application/json`` and one status per recipient, as the SDK expects. The key must be
``DEV_SMS_API_KEY``, the one ``make run`` gives the product. The page lists messages newest first,
numbers masked but for their last three digits; the last ``KEEP`` messages are kept, in memory.
E-mails a development SMTP server hands over (``record_email``, see ``backoffice/dev_smtp.py``) are
listed on the same page, addresses masked (``a***@exemple.sn``).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from flask import Blueprint, Response, jsonify, render_template_string, request

__all__ = ["DEV_SMS_API_KEY", "DevSmsSink", "mask_address", "mask_number"]

DEV_SMS_API_KEY: Final = "dev-sms-sink"
KEEP: Final = 500
_NUMBER = re.compile(r"^\+\d{1,3}\d{3,}$")     # what the SDK itself accepts

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development SMS sink</title>
<meta http-equiv="refresh" content="5">
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;vertical-align:top}
tr:nth-child(even){background:#f3f3f3}pre{margin:0;white-space:pre-wrap;font-family:inherit}</style></head>
<body><h1>SMS (and e-mails) "sent" in development</h1>
<p>Nothing leaves this machine: the product's Africa's Talking SDK (and its SMTP client) point here. Newest first;
refreshes every 5 s.</p>
{% if messages %}<table><tr><th>when (UTC)</th><th>by</th><th>to</th><th>from</th><th>message</th></tr>
{% for m in messages %}<tr><td>{{ m.at }}</td><td>{{ m.channel }}</td><td>{{ m.to }}</td><td>{{ m.sender }}</td><td><pre>{{ m.text }}</pre></td></tr>
{% endfor %}</table>{% else %}<p>No message yet.</p>{% endif %}
</body></html>"""


def mask_number(number: str) -> str:
    """``+221770000001`` -> ``**********001``: enough to tell the demo customers apart."""
    return "*" * max(0, len(number) - 3) + number[-3:]


def mask_address(address: str) -> str:
    """``awa.diop@exemple.sn`` -> ``a***@exemple.sn``."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local else mask_number(address)


@dataclass(frozen=True, slots=True)
class _Sms:
    at: str
    to: str
    sender: str
    text: str
    message_id: str
    channel: str = "SMS"


class DevSmsSink:
    def __init__(self) -> None:
        self._messages: deque[_Sms] = deque(maxlen=KEEP)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record_email(self, to: str, sender: str, subject: str, text: str) -> None:
        """An e-mail the development SMTP server received."""
        with self._lock:
            self._messages.append(_Sms(datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), to, sender,
                                       f"{subject}\n\n{text}" if subject and not text.startswith(subject) else text,
                                       f"dev-mail-{next(self._ids):08d}", channel="e-mail"))

    def blueprint(self) -> Blueprint:
        bp = Blueprint("dev_sms", __name__)

        @bp.post("/dev/africastalking/version1/messaging")
        def messaging() -> Response | tuple[str, int]:
            if request.headers.get("apiKey") != DEV_SMS_API_KEY:
                return "The supplied authentication is invalid", 401
            form = request.form
            text, sender = form.get("message", ""), form.get("from") or "-"
            recipients = []
            with self._lock:
                for number in (form.get("to") or "").split(","):
                    number = number.strip()
                    if not _NUMBER.match(number):
                        recipients.append({"statusCode": 403, "number": number, "status": "InvalidPhoneNumber",
                                           "cost": "0", "messageId": "None"})
                        continue
                    message_id = f"ATXid_dev_{next(self._ids):08d}"
                    self._messages.append(_Sms(datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), number,
                                               sender, text, message_id))
                    recipients.append({"statusCode": 101, "number": number, "status": "Success",
                                       "cost": "XOF 0", "messageId": message_id})
            sent = sum(1 for r in recipients if r["statusCode"] == 101)
            return jsonify(SMSMessageData={"Message": f"Sent to {sent}/{len(recipients)} Total Cost: XOF 0",
                                           "Recipients": recipients})

        @bp.get("/dev/sms")
        def page() -> str:
            with self._lock:
                shown = [{"at": m.at, "channel": m.channel, "sender": m.sender, "text": m.text,
                          "to": mask_address(m.to) if m.channel == "e-mail" else mask_number(m.to)}
                         for m in reversed(self._messages)]
            return render_template_string(_PAGE, messages=shown)

        return bp
