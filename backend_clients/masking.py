"""Masking of personal data in the log lines of the HTTP stack the clients use.

The masking rule itself is the product's one (``engine.masking``, a leaf module of the
engine's public surface with no dependency); this module applies it to urllib3's loggers.
"""

from __future__ import annotations

import logging
from typing import Final

from engine.masking import MaskNumbersFilter, mask, mask_numbers

__all__ = ["MaskNumbersFilter", "install_urllib3_masking", "mask", "mask_numbers"]

# The loggers through which urllib3 writes request paths (its retry warnings, its debug lines).
URLLIB3_LOGGERS: Final = ("urllib3.connectionpool", "urllib3.util.retry")


def install_urllib3_masking() -> None:
    """urllib3 logs the request path (WARNING on a connection retry, DEBUG on every request), and
    our paths hold phone and account numbers; mask them there too. Idempotent."""
    for name in URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskNumbersFilter) for f in logger.filters):
            logger.addFilter(MaskNumbersFilter())
