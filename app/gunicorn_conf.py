"""gunicorn settings for ``python -m app serve``: masked logs, Prometheus metrics summed over every worker, the
menus linted once in the master (a file with errors stops gunicorn before any worker starts, ``app.menu_gate``).

gunicorn's access log prints each request line with its query string
(``POST /ussd/africastalking?phoneNumber=%2B221770000001&token=...``): the product's log masking
is installed here, in the master, so the master's lines and every forked worker's (access log
included) leave with numbers masked and secrets blanked.

The access log is a product feature, paid on every hop: ``AccessLogger`` writes gunicorn's default
line (the Apache combined format) without building gunicorn's dictionary of every header and environ
variable first, and scrubs only the parts a client chooses (request line, user, referrer, user agent)
once, instead of the whole line again in the log record factory. A configured ``access_log_format``
other than the default is honoured as gunicorn does it (and scrubbed as every record is).

With several workers each process counts its own hops; in multiprocess mode (the directory
in ``PROMETHEUS_MULTIPROC_DIR``) every worker writes its values there and ``GET /metrics``
sums them, so a scrape sees the whole server, whichever worker answers it.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from typing import Any

from gunicorn.config import AccessLogFormat
from gunicorn.glogging import Logger
from prometheus_client import multiprocess

from app.logging_setup import Scrubbed, install_masking, scrub
from app.menu_gate import refuse_menus_with_errors
from app.settings import Settings

_settings = Settings.from_env_or_refuse()
install_masking([_settings.ussd_gateway_token, _settings.payment_callback_secret,
                 _settings.backoffice_api_key or ""])


def _user(environ: dict[str, Any]) -> str:
    """The Basic-auth user name, as gunicorn's ``%(u)s`` shows it."""
    auth = environ.get("HTTP_AUTHORIZATION")
    if not auth or auth[:5].lower() != "basic":
        return "-"
    try:
        return base64.b64decode(auth.split(" ", 1)[1].strip().encode()).split(b":", 1)[0].decode() or "-"
    except (IndexError, TypeError, binascii.Error, UnicodeDecodeError):
        return "-"


class AccessLogger(Logger):
    """gunicorn's logger, its default access line written cheaply (see the module's docstring)."""

    _stamp: tuple[int, str] = (0, "")

    def _now(self) -> str:
        second = int(time.time())
        if self._stamp[0] != second:   # strftime once a second, not once a request
            self._stamp = (second, time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second)))
        return self._stamp[1]

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        if self.cfg.access_log_format != AccessLogFormat.default:
            super().access(resp, req, environ, request_time)
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = getattr(resp, "sent", None)
        request_line = f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
        line = (f'{environ.get("REMOTE_ADDR", "-")} - {scrub(_user(environ))} {self._now()} '
                f'"{scrub(request_line)}" {status} {sent if sent is not None else "-"} '
                f'"{scrub(environ.get("HTTP_REFERER", "-"))}" "{scrub(environ.get("HTTP_USER_AGENT", "-"))}"')
        try:
            self.access_log.info(Scrubbed(line))
        except Exception:  # noqa: BLE001 - as gunicorn's own: a log line never fails a request
            self.exception("access log line failed")


logger_class = AccessLogger


def on_starting(server: Any) -> None:
    """In the master, before any worker: a menu file with errors stops gunicorn once, its problems printed once
    (each worker would lint it again at import and be refused, ``app.menu_gate``)."""
    refuse_menus_with_errors(_settings.menus_path)


def child_exit(server: Any, worker: Any) -> None:
    # Only in multiprocess mode (``app serve`` sets the directory): gunicorn run by hand without it has no files
    # to mark, and prometheus_client would raise on the missing path at each worker's exit.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
