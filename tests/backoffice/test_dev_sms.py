"""The development SMS sink of the reference back office: the official Africa's Talking SDK sends
to it as to the real API, and ``/dev/sms`` shows what was "sent", newest first, numbers masked but
for their last three digits; it exists only in development mode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import requests

from backend_clients.africastalking_sms import AfricasTalkingSms
from backoffice.app import create_app
from backoffice.config import BackofficeConfig
from backoffice.dev_sms import DEV_SMS_API_KEY
from dialogs.backends import BackendUnavailable
from tests.support.services import serve_wsgi


def test_the_sdk_sends_to_the_sink_and_the_page_lists_messages_newest_first_masked(backoffice_url):
    sms = AfricasTalkingSms("sandbox", DEV_SMS_API_KEY, api_url=f"{backoffice_url}/dev/africastalking/version1")
    first = sms.send("+221770000001", "ElecNet: votre code de vérification est 482913.")
    sms.send("+221770000003", "ElecNet: <b>crédit</b> faible")
    assert first.message_id.startswith("ATXid_dev_") and first.status == "Success"
    page = requests.get(f"{backoffice_url}/dev/sms", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    assert text.index("**********003") < text.index("**********001")          # newest first
    assert "votre code de vérification est 482913" in text
    assert "&lt;b&gt;crédit&lt;/b&gt;" in text and "<b>crédit" not in text   # shown, never interpreted
    assert "+221770000001" not in text


def test_the_sink_wants_the_development_key_and_refuses_what_the_provider_refuses(backoffice_url):
    with pytest.raises(BackendUnavailable):      # the SDK's answer to a 401, as with the real API
        AfricasTalkingSms("sandbox", "wrong", api_url=f"{backoffice_url}/dev/africastalking/version1").send(
            "+221770000001", "hi")
    answer = requests.post(f"{backoffice_url}/dev/africastalking/version1/messaging", timeout=5,
                           headers={"apiKey": DEV_SMS_API_KEY, "Accept": "application/json"},
                           data={"username": "sandbox", "to": "0770000001", "message": "hi"})
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["SMSMessageData"]["Recipients"][0]["status"] == "InvalidPhoneNumber"


def test_outside_development_mode_there_is_no_sink(backoffice_config: BackofficeConfig):
    closed = create_app(replace(backoffice_config, dev=False, api_key="k-dev-sms"))
    try:
        with serve_wsgi(closed) as url:
            assert requests.get(f"{url}/dev/sms", timeout=5).status_code == 404
            assert requests.post(f"{url}/dev/africastalking/version1/messaging", timeout=5,
                                 headers={"apiKey": DEV_SMS_API_KEY}, data={"to": "+221770000001"}).status_code == 404
    finally:
        closed.extensions["backoffice"].close()


def test_the_development_smtp_server_puts_mail_on_the_same_page(backoffice_app, backoffice_url, caplog):
    import logging

    from backend_clients.smtp_email import SmtpEmail
    from backoffice.dev_smtp import start_dev_smtp
    from tests.support.ports import AddressInUse, on_free_port

    def started(port: int) -> tuple[int, Callable[[], None]]:
        stop = start_dev_smtp(backoffice_app.extensions["dev_sink"], port)
        if stop is None:   # it says why in its log: aiosmtpd is installed here, so the port was taken
            raise AddressInUse(str(port))
        return port, stop

    caplog.set_level(logging.DEBUG)
    port, stop = on_free_port(started)
    try:
        SmtpEmail(f"smtp://127.0.0.1:{port}", "notifications@elecnet.example").send(
            "awa.diop@exemple.sn", "ElecNet: votre code de confirmation d'adresse e-mail est 482913.")
    finally:
        stop()
    page = requests.get(f"{backoffice_url}/dev/sms", timeout=5).text
    assert "<td>e-mail</td><td>a***@exemple.sn</td>" in page and "awa.diop" not in page
    assert "e-mail est 482913." in page
    # The server's log (make run prints it) names no recipient: an address is personal data.
    assert not [r for r in caplog.records if "awa.diop" in r.getMessage()]
