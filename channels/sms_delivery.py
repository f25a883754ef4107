"""Africa's Talking SMS delivery reports: ``POST /sms/africastalking/delivery``.

The provider POSTs a form (``id``, ``status``, ``phoneNumber``, ``networkCode``,
``failureReason``, ``retryCount``) for every message it took. Reports carry no signature:
Africa's Talking is authenticated as for its USSD callbacks, by the same ``GatewayGuard``
(the shared token on the URL or in ``X-Gateway-Token``, optionally its source networks). An accepted report is answered ``200 OK`` even when no message of ours has that id
(a report may arrive before the worker recorded the id; it is kept and matched later),
so the provider does not retry it for nothing.

Every error answer is plain text with its status (``error_response``), whatever refuses the report:
the view (403, 400) or the app around it (a body over the size limit: 413; another method: 405;
an unexpected failure: 500). Africa's Talking reads only the status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

from flask import Blueprint, Response, request

from engine.masking import mask
from engine.security_audit import SecurityAudit, SecurityEvent

from .gateway_guard import TOKEN_HEADER, GatewayGuard
from .msisdn import to_e164

__all__ = ["PATH", "DeliveryReport", "error_response", "plain_error", "sms_delivery_blueprint"]

log = logging.getLogger("channels.sms_delivery")

_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_STATUS = re.compile(r"^[A-Za-z]{1,24}$")
PATH: Final = "/sms/africastalking/delivery"


def plain_error(status: int, text: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """A provider callback's error answer: plain text, the status's own phrase unless ``text`` says more
    (``413 request entity too large``); ``headers`` kept (405 keeps its ``Allow``)."""
    body = text or HTTPStatus(status).phrase.lower()
    return Response(body, status=status, mimetype="text/plain", headers=dict(headers or {}))


def error_response(status: int = 400, headers: Mapping[str, str] | None = None) -> Response:
    """This endpoint's one error answer: its view's 400, and what the app refuses around it (413, 405, 500)."""
    return plain_error(status, "invalid delivery report" if status == 400 else None, headers)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    message_id: str
    msisdn: str
    status: str
    failure_reason: str | None


def sms_delivery_blueprint(record: Callable[[DeliveryReport], bool], guard: GatewayGuard, default_region: str,
                          security: SecurityAudit) -> Blueprint:
    """``record`` keeps the report and answers whether one of our messages has that id."""
    bp = Blueprint("sms_delivery", __name__)

    @bp.post(PATH)
    def delivery() -> Response:
        headers = {name: request.headers.get(name, "") for name in (TOKEN_HEADER, "X-Forwarded-For")}
        refusal = guard.check(headers, request.args, request.remote_addr)
        if refusal is not None:
            log.warning("delivery report refused: %s", refusal.reason)
            security.record(SecurityEvent("gateway_refused", "sms", subject=refusal.source, detail=refusal.reason))
            return plain_error(403)
        form = request.form
        message_id = (form.get("id") or "").strip()
        status = (form.get("status") or "").strip()
        msisdn = to_e164(form.get("phoneNumber") or "", default_region)
        if not _MESSAGE_ID.match(message_id) or not _STATUS.match(status) or msisdn is None:
            log.info("delivery report rejected: malformed")
            return error_response(400)
        reason = (form.get("failureReason") or "").strip()[:80] or None
        known = record(DeliveryReport(message_id, msisdn, status, reason))
        log.info("delivery report %s for %s: %s%s", message_id, mask(msisdn), status, "" if known else " (not matched yet)")
        return Response("OK", mimetype="text/plain")

    return bp
