"""Africa's Talking USSD: form callback in, ``CON``/``END`` text out.

The gateway sends the whole ``*``-joined input history in ``text`` on every hop; the
adapter hands the engine only the newest hop, plus the full history as ``dialed`` so a
first hop that already carries input (``*123*1#``) works as a shortcut. The full ``text``
is the hop id: a replayed request gets the recorded answer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Blueprint, Response, request

from engine import Engine, Reply, Turn
from engine.masking import mask

from .msisdn import to_e164

__all__ = ["BadRequest", "UssdAdapter", "ussd_blueprint"]

log = logging.getLogger("channels.ussd")

CHANNEL = "ussd"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_SERVICE_CODE = re.compile(r"^[*#0-9]{2,40}$")
_TEXT = re.compile(r"^[0-9A-Za-z*#+ .,\-]{0,400}$")
INVALID_REQUEST = "Requête invalide. / Invalid request."


class BadRequest(ValueError):
    """The gateway's request is malformed; the message says which field."""


@dataclass(frozen=True, slots=True)
class UssdAdapter:
    default_region: str = "SN"

    def parse(self, form: Mapping[str, str]) -> Turn:
        """The form of one callback as a ``Turn``; ``BadRequest`` when a field is missing or malformed."""
        session_id = (form.get("sessionId") or "").strip()
        if not _SESSION_ID.match(session_id):
            raise BadRequest("sessionId")
        service_code = (form.get("serviceCode") or "").strip()
        if not _SERVICE_CODE.match(service_code):
            raise BadRequest("serviceCode")
        msisdn = to_e164(form.get("phoneNumber") or "", self.default_region)
        if msisdn is None:
            raise BadRequest("phoneNumber")
        text = form.get("text")
        if text is None or not _TEXT.match(text):
            raise BadRequest("text")
        segments = tuple(text.split("*")) if text else ()
        return Turn(channel=CHANNEL, user_id=msisdn, session_key=f"{CHANNEL}:{session_id}",
                    input=segments[-1] if segments else None, hop_id=text, dialed=segments,
                    entry=service_code, received_at=time.time())

    @staticmethod
    def render(reply: Reply) -> str:
        return ("END " if reply.end else "CON ") + reply.text


def _plain(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def ussd_blueprint(engine: Engine, adapter: UssdAdapter) -> Blueprint:
    bp = Blueprint("ussd", __name__)

    @bp.post("/ussd/africastalking")
    def callback() -> Response:
        try:
            turn = adapter.parse(request.form)
        except BadRequest as exc:
            log.info("rejected USSD callback: bad %s", exc)
            return _plain(f"END {INVALID_REQUEST}", 400)
        reply = engine.handle(turn)
        log.info("ussd hop user=%s node=%s end=%s", mask(turn.user_id),
                 reply.screen.node if reply.screen else "-", reply.end)
        return _plain(adapter.render(reply))

    @bp.post("/ussd/africastalking/events")
    def events() -> Response:
        form = request.form
        session_id = (form.get("sessionId") or "").strip()
        status = (form.get("status") or "").strip()
        if not _SESSION_ID.match(session_id) or status not in ("Success", "Incomplete", "Failed"):
            return _plain("invalid end-of-session notification", 400)
        engine.finish(channel=CHANNEL, session_key=f"{CHANNEL}:{session_id}",
                      user_id=to_e164(form.get("phoneNumber") or "", adapter.default_region) or "",
                      status=status, duration_ms=_int(form.get("durationInMillis")),
                      error=(form.get("errorMessage") or None), hops=_int(form.get("hopsCount")))
        return _plain("OK")

    return bp


def _int(value: str | None) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
