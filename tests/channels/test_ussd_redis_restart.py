"""Redis goes away in the middle of a session and comes back: the customer gets a polite END, and the
next dial works again, without restarting the engine. A throwaway redis-server of our own is used, so
the machine's shared Redis is never touched."""

from __future__ import annotations

from dataclasses import replace

from app.factory import create_app

from ..support.engine import UssdPhone


def test_redis_lost_mid_session_then_back(settings, throwaway_redis):
    app = create_app(replace(settings, redis_url=throwaway_redis.url))
    client = app.test_client()
    phone = UssdPhone(client, "+221770000001")
    assert phone.dial().startswith("CON ElecNet - 1000001")
    throwaway_redis.stop()
    assert phone.answer("1") == ("END Service momentanément indisponible. Merci de réessayer plus tard.")
    assert phone.last_status == 200
    throwaway_redis.start()  # same port, empty: the session is gone, a new dial starts afresh
    again = UssdPhone(client, "+221770000001")
    assert again.dial().startswith("CON ElecNet - 1000001")
    assert again.answer("1").startswith("CON Compte 1000001\nA payer: 12 500 FCFA")
