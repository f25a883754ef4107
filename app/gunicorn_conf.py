"""gunicorn settings for ``python -m app serve``: masked logs, Prometheus metrics summed over every worker.

gunicorn's access log prints each request line with its query string
(``POST /ussd/africastalking?phoneNumber=%2B221770000001&token=...``): the product's log masking
is installed here, in the master, so the master's lines and every forked worker's (access log
included) leave with numbers masked and secrets blanked.

With several workers each process counts its own hops; in multiprocess mode (the directory
in ``PROMETHEUS_MULTIPROC_DIR``) every worker writes its values there and ``GET /metrics``
sums them, so a scrape sees the whole server, whichever worker answers it.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

from app.logging_setup import install_masking
from app.settings import Settings

_settings = Settings.from_env()
install_masking([_settings.ussd_gateway_token, _settings.payment_callback_secret,
                 _settings.backoffice_api_key or ""])


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)
