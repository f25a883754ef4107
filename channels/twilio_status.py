"""Twilio message status callbacks: ``POST /whatsapp/twilio/status``.

Twilio signs them like its inbound webhooks: ``X-Twilio-Signature`` = base64 HMAC-SHA1 of
the public URL followed by each POST parameter's name and value in sorted order, checked
with the SDK's ``RequestValidator`` against the URL Twilio called (``PUBLIC_BASE_URL`` +
path, and the query string when there is one: behind a proxy the Flask request URL is not the one Twilio
signed).

A status of a reply given inline in a TwiML answer comes to the URL its ``<Message>`` named (its ``action``), with
the reply part's opaque reference in the query (``?ref=``, ``channels/twiml_refs.py``): the report is about that
part, known to the outbox by the reference (Twilio's ``MessageSid`` of it is logged, the product never having had
it). A reference that is not one of ours is refused (400); one the outbox does not know (yet: the status outran the
reply's record, or the reply was never recorded) is kept and answered as any other report (204), applied when the
record comes.

Every error answer is plain text with its status (``error_response``), as the view's own refusals
(403, 400): also a body over the size limit (413), another method (405) and an unexpected failure
(500). Twilio reads only the status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from flask import Blueprint, Response, request
from twilio.request_validator import RequestValidator

from engine.masking import mask

from .sms_delivery import DeliveryReport, plain_error
from .twiml_refs import QUERY, read_ref

__all__ = ["PATH", "error_response", "twilio_status_blueprint"]

log = logging.getLogger("channels.twilio_status")

PATH = "/whatsapp/twilio/status"
_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_STATUS = frozenset({"queued", "sending", "sent", "delivered", "read", "failed", "undelivered", "accepted",
                     "scheduled", "canceled", "receiving", "received"})


def error_response(status: int = 400, headers: Mapping[str, str] | None = None) -> Response:
    """This endpoint's one error answer: its view's 400, and what the app refuses around it (413, 405, 500)."""
    return plain_error(status, "invalid status callback" if status == 400 else None, headers)


def twilio_status_blueprint(record: Callable[[DeliveryReport], bool], auth_token: str,
                            public_base_url: str) -> Blueprint:
    bp = Blueprint("twilio_status", __name__)
    validator = RequestValidator(auth_token) if auth_token else None

    @bp.post(PATH)
    def status() -> Response:
        form = request.form.to_dict()
        signature = request.headers.get("X-Twilio-Signature", "")
        query = request.query_string.decode("latin-1")
        url = public_base_url + PATH + (f"?{query}" if query else "")
        if validator is None or not validator.validate(url, form, signature):
            log.warning("Twilio status callback refused: bad or missing signature")
            return plain_error(403)
        sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "")
        to = form.get("To", "").removeprefix("whatsapp:")
        if not _SID.match(sid) or state not in _STATUS or not re.fullmatch(r"\+\d{6,15}", to):
            return error_response(400)
        ref = request.args.get(QUERY)
        part = read_ref(ref) if ref is not None else None
        if ref is not None and part is None:
            return error_response(400)
        error = (form.get("ErrorCode") or "")[:20] or None
        known = record(DeliveryReport(part or sid, to, state, error))
        log.info("Twilio status %s for %s: %s%s", sid, mask(to), state,
                 "" if part is None else f" (TwiML reply {part}{'' if known else ', not recorded yet'})")
        return Response(status=204)

    return bp
