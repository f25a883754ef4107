"""The gateway's plain hops are answered in front of Flask (``channels.ussd_wsgi``); every other
request takes the Flask route. Both answer the same, a session goes on across both, and what the
plain route does not take still gets the channel's own answers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.factory import create_app

TOKEN = "gw-7c1e9a3f5d2b"
PLAIN = "application/x-www-form-urlencoded"
WITH_CHARSET = "application/x-www-form-urlencoded; charset=utf-8"   # not the plain route's: Flask's


@pytest.fixture
def client(settings):
    return create_app(replace(settings, ussd_gateway_token=TOKEN)).test_client()


def post(client, text: str, content_type: str = PLAIN, session: str = "ATUid_fast", **headers: str):
    body = f"sessionId={session}&serviceCode=%2A123%23&phoneNumber=%2B221770000001&networkCode=99999&text={text}"
    return client.post("/ussd/africastalking", data=body.encode("latin-1"),
                       headers={"Content-Type": content_type, "X-Gateway-Token": TOKEN, **headers})


def _requests(client) -> float:
    metrics = client.get("/metrics").get_data(as_text=True)
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith('channel_request_seconds_count{channel="ussd"}'))


def test_both_routes_answer_the_same_and_a_session_goes_on_across_them(client):
    plain = post(client, "", session="ATUid_plain")
    flask = post(client, "", WITH_CHARSET, session="ATUid_flask")
    assert plain.status_code == flask.status_code == 200
    assert plain.headers["Content-Type"] == flask.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert plain.get_data(as_text=True) == flask.get_data(as_text=True)
    assert plain.get_data(as_text=True).startswith("CON ElecNet - 1000001\n1. Solde et factures")
    assert post(client, "1", WITH_CHARSET, session="ATUid_plain").get_data(as_text=True).startswith(
        "CON Compte 1000001")
    assert post(client, "1%2A1", session="ATUid_plain").get_data(as_text=True).startswith("CON Factures")


def test_plain_hops_are_counted_in_the_request_metrics(client):
    before = _requests(client)
    post(client, "")
    post(client, "1")
    assert _requests(client) == before + 2


def test_what_the_plain_route_does_not_take_gets_the_channels_own_answers(client):
    refused = post(client, "", **{"X-Gateway-Token": "wrong"})
    assert refused.status_code == 403
    assert refused.get_data(as_text=True) == "END Accès refusé. / Access denied."
    for text in ("%00", "%FF%FE", "1%0A2"):                  # a NUL, bytes that are not UTF-8, a newline
        answer = post(client, text)
        assert answer.status_code == 200
        assert answer.get_data(as_text=True).startswith("END Désolé, nous n'avons pas pu lire votre demande.")
    missing = client.post("/ussd/africastalking", data=b"sessionId=ATUid_x&text=",
                          headers={"Content-Type": PLAIN, "X-Gateway-Token": TOKEN})
    assert missing.status_code == 200
    assert missing.get_data(as_text=True).startswith("END Désolé")
    large = client.post("/ussd/africastalking", data=b"text=" + b"1" * 20_000,
                        headers={"Content-Type": PLAIN, "X-Gateway-Token": TOKEN})
    assert large.get_data(as_text=True).startswith("END ")
