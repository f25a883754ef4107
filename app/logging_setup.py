"""The product's logging: one format, no phone or account number and no secret in any line.

Masking at the call site (``engine.masking.mask``) keeps our own lines readable; this module
is the net under everything else: gunicorn's access log (which prints query strings such as
``?phoneNumber=%2B221770000001&token=...``), werkzeug, urllib3, tracebacks. It installs a log
record factory, so every record of the process, whichever logger or handler, leaves with its
long numbers masked, ``token=`` values and configured secrets blanked, and the traceback
folded into the masked message. ``transitions`` writes a line per state change at INFO; those
are debugging detail, shown only under ``LOG_LEVEL=DEBUG`` and labelled DEBUG.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

from engine.masking import mask_numbers

__all__ = ["LOG_FORMAT", "Scrubbed", "configure_logging", "install_masking", "scrub"]

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED: Final = "***"
# A secret passed as a query parameter (the gateway's ``?token=``; any ``*token=``, ``secret=``, ``key=``).
_SECRET_PARAM: Final = re.compile(r"(?i)(\b[\w-]*(?:token|secret|key)=)[^&\s\"']+")
_MIN_SECRET_CHARS: Final = 4  # shorter "secrets" would blank half the log
# An e-mail address keeps its first letter and its domain: ``awa.diop@exemple.sn`` -> ``a***@exemple.sn``.
_EMAIL: Final = re.compile(r"\b([A-Za-z0-9])[A-Za-z0-9._%+'-]*@(?=[A-Za-z0-9-]+\.)")

# An e-mail's unsubscribe link: its token names an address (web_fallback/customer/unsubscribe_links.py).
_UNSUBSCRIBE: Final = re.compile(r"(/unsubscribe/)[^\s\"'?]+")

# Only a text with a digit, an "=" or an "@" can hold a number, a ``token=`` or an address: the rest skips the regexes.
_MAY_HOLD: Final = re.compile(r"[0-9=@]")

_secrets: tuple[str, ...] = ()   # longest first
_previous_factory: Callable[..., logging.LogRecord] | None = None


class Scrubbed(str):
    """A log message already passed through ``scrub`` (the access log's): not scrubbed twice."""

    __slots__ = ()


def scrub(text: str) -> str:
    """``text`` with configured secrets and ``token=`` values blanked, long numbers and e-mail addresses masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "/unsubscribe/" in text:
        text = _UNSUBSCRIBE.sub(lambda m: m.group(1) + REDACTED, text)
    if not _MAY_HOLD.search(text):
        return text
    text = _EMAIL.sub(lambda m: m.group(1) + "***@", text)
    return mask_numbers(_SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text))


def _scrub_record(record: logging.LogRecord) -> None:
    if type(record.msg) is Scrubbed and not record.args and not record.exc_info:
        return
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a broken record is the logging module's business, not ours
        return
    if record.exc_info:
        # The traceback's text holds whatever the exception said: fold it in, masked.
        message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
        record.exc_info, record.exc_text = None, None
    record.msg, record.args = scrub(message), None
    if record.name.startswith("transitions") and record.levelno == logging.INFO:
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)


def install_masking(secrets: Iterable[str] = ()) -> None:
    """Mask every log record of this process from now on (idempotent); ``secrets`` are blanked."""
    global _previous_factory, _secrets
    kept = set(_secrets) | {s for s in secrets if s and len(s) >= _MIN_SECRET_CHARS}
    _secrets = tuple(sorted(kept, key=len, reverse=True))
    if _previous_factory is not None:
        return
    previous = logging.getLogRecordFactory()
    _previous_factory = previous

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub_record(record)
        return record

    logging.setLogRecordFactory(factory)


def configure_logging(level: str | int, secrets: Iterable[str] = ()) -> None:
    """The product's logging for a process: ``level``, one format, masking, ``transitions`` at DEBUG."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    install_masking(secrets)
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    debug = isinstance(numeric, int) and numeric <= logging.DEBUG
    # Its per-state lines are INFO in the library; below DEBUG they are noise (half the log).
    logging.getLogger("transitions").setLevel(logging.DEBUG if debug else logging.WARNING)
