"""gunicorn settings for ``python -m app serve``: Prometheus metrics summed over every worker.

With several workers each process counts its own hops; in multiprocess mode (the directory
in ``PROMETHEUS_MULTIPROC_DIR``) every worker writes its values there and ``GET /metrics``
sums them, so a scrape sees the whole server, whichever worker answers it.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)
