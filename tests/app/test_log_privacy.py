"""No phone number, account number or gateway token in any log line: a whole session through each real
server the engine runs under (``app/web_servers.py``: gunicorn gthread and sync, granian; access log
included, numbers and token in the query string), then a scan of what it wrote."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
import requests

from app.factory import create_app
from app.logging_setup import configure_logging
from app.web_servers import SERVERS

from ..support.engine import UssdPhone, served_engine

TOKEN = "gw-7c1e9b04d2aa"
# The full numbers, and the parts of them someone could search for.
SECRETS = ["221770000001", "770000001", "1000001", TOKEN]
# Each server's access line of an events callback (gunicorn shows the query string, granian does not).
EVENTS_ACCESS = re.compile(r'"POST /ussd/africastalking/events\S* HTTP/1.1" (200|403)')


def _wait_for_access_lines(log_path: Path, count: int, timeout: float = 10.0) -> None:
    """Until the server logged ``count`` events callbacks: it writes a request's access line after sending the
    answer (granian: from the worker's thread, once the response is handed to its Rust side), so the client can
    hold the answer before the line exists; stopping the server then would lose it."""
    deadline = time.monotonic() + timeout
    while len(EVENTS_ACCESS.findall(log_path.read_text())) < count and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("web_server", SERVERS)
def test_a_full_session_through_the_server_leaves_no_number_or_token_in_the_logs(web_server, settings, tmp_path):
    log_path = tmp_path / "server.log"
    with served_engine(settings, log_path, web_server, RESUME_WINDOW_SECONDS="0", LOG_LEVEL="INFO",
                       USSD_GATEWAY_TOKEN=TOKEN) as base:
        # Some gateways are configured to repeat the fields in the callback URL, token included.
        url = (f"{base}/ussd/africastalking?phoneNumber=%2B221770000001&account=1000001"
               f"&msisdn=770000001&token={TOKEN}")
        form = {"sessionId": "ATUid_logscan", "serviceCode": "*123#", "phoneNumber": "+221770000001",
                "networkCode": "99999"}
        screens = [requests.post(url, data={**form, "text": text}, timeout=10).text
                   for text in ("", "1", "1*1", "1*1*98", "1*1*98*0", "1*1*98*0*x", "1*1*98*0*x*\x00")]
        assert screens[1].startswith("CON Compte 1000001")  # the numbers did go through the server
        assert screens[-1].startswith("END ")
        refused = requests.post(f"{base}/ussd/africastalking/events?phoneNumber=%2B221770000001",
                                data={**form, "status": "Success"}, timeout=10)
        assert refused.status_code == 403
        done = requests.post(f"{base}/ussd/africastalking/events?phoneNumber=%2B221770000001",
                             data={**form, "status": "Success"}, headers={"X-Gateway-Token": TOKEN}, timeout=10)
        assert done.status_code == 200
        _wait_for_access_lines(log_path, 2)
    logged = log_path.read_text()
    # The access log and our own lines were captured: the scan below reads real lines.
    assert "ussd hop user=+2217*****001" in logged
    if web_server == "granian":
        # granian's access line shows the path without the query string
        assert len(re.findall(r'"POST /ussd/africastalking HTTP/1.1" 200', logged)) == 7
        assert len(EVENTS_ACCESS.findall(logged)) == 2
    else:
        assert logged.count('"POST /ussd/africastalking?') == 7
        assert "phoneNumber=%2B2********001" in logged and "token=***" in logged
    for secret in SECRETS:
        assert secret not in logged, [line for line in logged.splitlines() if secret in line]
    # transitions' per-state lines are debugging detail, not INFO.
    assert not re.search(r"transitions", logged), [line for line in logged.splitlines() if "transitions" in line]


def test_exceptions_and_library_lines_are_masked_and_transitions_speaks_only_at_debug(settings, caplog):
    app = create_app(settings)
    phone = UssdPhone(app.test_client(), "+221770000001")
    with caplog.at_level(logging.INFO):
        phone.dial()
        phone.answer("1")
        try:
            raise ValueError("no account 1000001 for +221770000001")
        except ValueError:
            logging.getLogger("some.library").exception("failed for /accounts/1000001?token=abcdef123")
    assert not [r for r in caplog.records if r.name.startswith("transitions")]
    assert "1000001" not in caplog.text and "770000001" not in caplog.text and "abcdef123" not in caplog.text
    assert "ValueError: no account 1***001 for +2217*****001" in caplog.text
    logging.getLogger("smtplib.like").warning("550 mailbox awa.diop@exemple.sn unavailable")
    assert "awa.diop" not in caplog.text and "550 mailbox a***@exemple.sn unavailable" in caplog.text
    caplog.clear()
    try:
        configure_logging("DEBUG")
        with caplog.at_level(logging.DEBUG):
            assert phone.answer("1").startswith("CON Factures")
        chatter = [r for r in caplog.records if r.name.startswith("transitions")]
        assert chatter and all(r.levelno == logging.DEBUG for r in chatter)
    finally:
        configure_logging(settings.log_level)
