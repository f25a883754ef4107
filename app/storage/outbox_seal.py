"""Secrets in the notification outbox, sealed: nobody who reads the database can use them.

A one-time code (web sign-in, first PIN, e-mail or account-link confirmation), an undo code or a
prepaid token (the 20 digits a customer keys into the meter: it is worth the money paid), or an SMS
reply the provider could not take at once (its screen may show a token) travels to the customer through
the outbox, so it sits in a row until the worker sends it. Those
fields (``SECRET_FIELDS``, whatever the kind) are taken out of the JSON payload and kept in the row's
``sealed`` column as a Fernet token (AES-CBC + HMAC) under ``OUTBOX_SEAL_KEY``; the payload keeps
only their names under ``"sealed"``, so a row says that it carried a secret, never which. The worker,
which has the key, opens the token at send time; once the message is sent, failed for good or
suppressed the token is erased, so even the key and a later backup together give nothing back (a message
sent on WhatsApp keeps it until its delivery is final, an hour at most, for the SMS a late "outside the
24-hour window" calls for: ``app/notify.py``).

``OUTBOX_SEAL_KEY`` is one Fernet key, or several comma-separated: the first seals, all open (a key
is rotated by putting the new one first and dropping the old after the outbox drained). Unset, the key
is derived from ``SECRET_KEY`` (for this use only), which every process of one deployment shares.

The outbox is not where a token is kept for the customer: a prepaid customer reads it again in the
last payments and the balance (``payment_intents.token``, the back office's last purchase).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["SEALED", "SECRET_FIELDS", "OutboxSeal", "SealBroken"]

log = logging.getLogger("notify")

# Payload fields that let whoever reads them act as the customer: the code of ``engine.one_time_codes``
# that each kind carries (sign-in, PIN, e-mail, link), the undo of a link (code and ready-made keyword),
# a receipt's prepaid token (whoever types it into a meter gets the credit), and an SMS reply queued when the
# provider could not take it at once (``app/sms_replies.py``: a screen may show a token or a code).
SECRET_FIELDS: Final = frozenset({"code", "undo_code", "undo_keyword", "token", "reply", "reply_messages"})
# What an agent is told when a message whose secrets were erased is sent again: how the customer gets it.
_ERASED: Final = {"token": "its prepaid token was erased after a first send; the customer reads it again in "
                           "*123*3*2# (last payments)",
           # Before "reply": a WhatsApp reply seals both, and its messages say which channel it was for.
           "reply_messages": "the WhatsApp reply was erased after a first send; the customer writes again",
           "reply": "the SMS reply was erased after a first send; the customer sends the command again"}
# The payload key listing which fields were sealed (names only).
SEALED: Final = "sealed"

_process_key: bytes | None = None


class SealBroken(Exception):
    """A sealed token that this key cannot open (another key, or altered): the reason, for IT."""


class OutboxSeal:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("OutboxSeal needs at least one key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_setting(cls, value: str, secret_key: str = "") -> OutboxSeal:
        """The seal of ``OUTBOX_SEAL_KEY``; without one, of a key derived from ``secret_key``; without either,
        a random key for this process only (what this process queues, only this process can send: the
        worker then fails such messages, saying why)."""
        keys = [k.strip().encode() for k in value.split(",") if k.strip()]
        if not keys and secret_key:
            keys = [base64.urlsafe_b64encode(hmac.new(secret_key.encode(), b"outbox seal v1",
                                                      hashlib.sha256).digest())]
        if keys:
            try:
                return cls(keys)
            except ValueError as exc:
                raise ValueError("OUTBOX_SEAL_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated; "
                                 "make one with: python -c 'from cryptography.fernet import Fernet; "
                                 "print(Fernet.generate_key().decode())'") from exc
        global _process_key   # one random key per process, shared by all its builders
        if _process_key is None:
            log.warning("neither OUTBOX_SEAL_KEY nor SECRET_KEY is set: one-time codes in the outbox are sealed "
                        "with a random key for this process; another process (the worker) cannot send them. "
                        "Set SECRET_KEY (or OUTBOX_SEAL_KEY; make run keeps both in var/).")
            _process_key = Fernet.generate_key()
        return cls([_process_key])

    def seal(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """``payload`` without its secret fields (their names under ``"sealed"``), and the token holding
        them (``None`` when it had none)."""
        secrets = {k: v for k, v in payload.items() if k in SECRET_FIELDS and v is not None}
        if not secrets:
            return dict(payload), None
        rest = {k: v for k, v in payload.items() if k not in SECRET_FIELDS}
        rest[SEALED] = sorted(secrets)
        token = self._fernet.encrypt(json.dumps(secrets, default=str).encode()).decode()
        return rest, token

    def seal_text(self, text: str) -> str:
        """One text sealed whole (an incoming SMS kept for the worker: it may hold a PIN)."""
        return self._fernet.encrypt(text.encode()).decode()

    def open_text(self, token: str) -> str:
        """The text of ``seal_text``; ``SealBroken`` when this seal cannot open it."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SealBroken("its sealed text cannot be opened: OUTBOX_SEAL_KEY is not the key it was "
                             "sealed with") from None

    def open(self, payload: Mapping[str, Any], token: str | None) -> dict[str, Any]:
        """The payload with its secret fields back. ``SealBroken`` when it had some and they cannot be
        read: erased (already sent once, or failed) or sealed under a key this seal does not hold."""
        names = payload.get(SEALED)
        if not names:
            return dict(payload)
        if not token:
            raise SealBroken(next((why for name, why in _ERASED.items() if name in names),
                                  "its one-time code was erased after a first send; the customer asks for a new one"))
        try:
            secrets = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SealBroken("its sealed code cannot be opened: OUTBOX_SEAL_KEY is not the key it was "
                             "sealed with") from None
        opened = {k: v for k, v in payload.items() if k != SEALED}
        opened.update(secrets)
        return opened
