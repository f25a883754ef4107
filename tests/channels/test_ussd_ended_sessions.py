"""A hop on a USSD session after its END screen, as Africa's Talking would post it (form sessionId,
serviceCode, phoneNumber and the ``*``-joined history in text).

A gateway never sends another hop on a session it ended, nor reuses its id: such a hop is a replay
or a broken gateway. The gateway's own retry of the last hop gets the same END again; any other hop
gets a polite END asking to dial again, runs nothing of the old session again (its inputs are not
followed as a new dial), shows none of its data, and is a security event. A new dial (a new
sessionId) works as ever.
"""

from __future__ import annotations

import time
from dataclasses import replace

import redis
from flask import Flask
from sqlalchemy import select

from app.factory import create_app
from app.settings import Settings
from app.storage.models import SecurityEventRow
from tests.support.engine import UssdPhone

HOME_FR = ("CON ElecNet - 1000001\n1. Solde et factures\n2. Consommation\n3. Payer\n4. Panne/réclamation\n"
           "5. Suivi demande\n6. Délai de paiement\n7. Simulateur\n8. Préférences")
CANCELLED = "END Paiement annulé. Rien n'a été débité."
SESSION_OVER_FR = "END Cette session est terminée. Merci de recomposer le code."
SESSION_OVER_EN = "END This session has ended. Please dial the code again."


def _reuse_events(app: Flask) -> list[tuple[str, str]]:
    with app.extensions["parts"]["db"]() as db:
        rows = db.scalars(select(SecurityEventRow).where(SecurityEventRow.kind == "session_reused")).all()
        return [(row.channel, row.detail) for row in rows]


def test_a_hop_after_the_end_screen_is_refused_politely_and_runs_nothing_again(phone, app: Flask):
    p = phone("+221770000001")
    p.dial("3", "2", "5000", "1")           # pay 5 000 with Orange Money ...
    assert p.answer("2") == CANCELLED       # ... cancelled: the session ends
    ended = "*".join(p.inputs)
    assert p.post(ended) == CANCELLED       # the gateway's retry of that hop: the same END
    assert _reuse_events(app) == []
    # One more input on the ended session: not the old inputs followed again as a new dial (which
    # would show the cancelled payment again), not the main menu either.
    assert p.answer("1") == SESSION_OVER_FR
    assert p.post("") == SESSION_OVER_FR    # a "first hop" on that id is no new session either
    assert p.post(ended) == CANCELLED       # and the retry of the last real hop still gets its END
    assert p.last_status == 200
    assert _reuse_events(app) == [("ussd", "hop on an ended session"), ("ussd", "hop on an ended session")]
    assert phone("+221770000001").dial() == HOME_FR     # a new dial, a new session


def test_after_the_gateway_reported_a_normal_end_a_hop_gets_the_line_in_the_customers_language(phone, app):
    p = phone("+221770000002")              # a business customer, in English
    p.dial()
    assert p.answer("1").startswith("CON ElecNet - 2000001\n1. Balance and bills")
    event = {"sessionId": p.session_id, "serviceCode": "*123#", "phoneNumber": p.msisdn, "networkCode": "99999",
             "status": "Success", "durationInMillis": "8000", "hopsCount": "2"}
    assert app.test_client().post("/ussd/africastalking/events", data=event).status_code == 200
    assert p.answer("1") == SESSION_OVER_EN   # not the balance of account 2000001
    assert _reuse_events(app) == [("ussd", "hop on an ended session")]


def test_a_payment_hop_replayed_after_the_ended_session_expired_is_still_refused(phone, app: Flask):
    p = phone("+221770000001")
    p.dial("3", "2", "5000", "1")
    assert p.answer("2") == CANCELLED
    ended = "*".join(p.inputs)
    # Two minutes on, the ended session itself has expired from the store (as its TTL does) ...
    app.extensions["parts"]["store"].delete(f"ussd:{p.session_id}")
    # ... but its id is spent: its whole history is not followed again as a new dial. The gateway's retry of
    # the hop that ended it gets that END again (kept with the spent id), anything else the polite refusal.
    assert p.post(ended) == CANCELLED
    assert p.post("3*2*5000*1*1") == SESSION_OVER_FR
    assert _reuse_events(app) == [("ussd", "hop on an ended session")]
    assert phone("+221770000001").dial() == HOME_FR


def _keeps(client: redis.Redis, text: str) -> bool:
    """Whether any session-store value in Redis holds ``text``."""
    return any(text.encode() in (client.get(k) or b"") for k in client.scan_iter("conv:*")
               if client.type(k) == b"string")


def test_the_end_is_given_again_only_while_the_gateway_may_retry_it_then_the_id_stays_refused(settings: Settings):
    app = create_app(replace(settings, ended_replay_seconds=1))   # ENDED_REPLAY_SECONDS: a second for minutes
    p = UssdPhone(app.test_client(), "+221770000001")
    p.dial("3", "2", "5000", "1")
    assert p.answer("2") == CANCELLED
    ended = "*".join(p.inputs)
    app.extensions["parts"]["store"].delete(f"ussd:{p.session_id}")   # the ended session's two minutes are over
    assert p.post(ended) == CANCELLED                                  # the gateway's retry, seconds later
    client = redis.Redis.from_url(settings.redis_url or "")
    deadline = time.monotonic() + 5
    while _keeps(client, "annulé") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _keeps(client, "annulé")                # past the retries, nothing of that END is kept
    client.close()
    assert p.post(ended) == SESSION_OVER_FR            # and its hop is refused, as any hop on the spent id
    assert _reuse_events(app) == [("ussd", "hop on an ended session")]
