"""The unsubscribe link of our e-mails: a token naming an address and a topic, signed with the server key.

``UnsubscribeLinks(key, base_url)`` mints ``{base_url}/web/unsubscribe/<token>`` and reads a token back.
The token is ``base64url("v1|language|topic|address") + "." + base64url(HMAC-SHA256(key, payload)[:16])``:
it never expires (an e-mail is read months later) and cannot be guessed or altered without the key, so
it is the one authority of the one-click POST (RFC 8058), which carries no cookie. The key is derived
from ``SECRET_KEY`` for this purpose only (``derive_key``). ``language`` is the customer's, for the page.
The access log never shows a token (``app/logging_setup.py`` blanks it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["ALL_EMAIL", "PATH", "TOPIC_WORDS", "Unsubscribe", "UnsubscribeLinks", "derive_key", "footer"]

PATH: Final = "/web/unsubscribe"
ALL_EMAIL: Final = "all"
_VERSION: Final = "v1"
_SIG_BYTES: Final = 16
_TOPIC = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,600}\.[A-Za-z0-9_-]{16,40}$")
_LANGUAGES: Final = ("fr", "en")

# What a link stops, as the object of the footer's and the page's sentences ("Ne plus recevoir {topic}");
# any other kind is "these messages". Whole phrases: "all e-mail" is not "e-mails about" something.
TOPIC_WORDS: Final[dict[str, dict[str, str]]] = {
    "fr": {"outage_zone": "les e-mails sur les coupures dans votre zone",
           "bill_issued": "les e-mails sur les nouvelles factures",
           "low_credit": "les e-mails sur le crédit faible du compteur", ALL_EMAIL: "aucun de nos e-mails",
           "": "ces messages par e-mail"},
    "en": {"outage_zone": "e-mails about power cuts in your area", "bill_issued": "e-mails about new bills",
           "low_credit": "e-mails about low meter credit", ALL_EMAIL: "all our e-mails",
           "": "these messages by e-mail"},
}
_FOOTER: Final = {
    "fr": "Ne plus recevoir {topic} (les SMS continuent) : {url}",
    "en": "To stop {topic} (SMS still come): {url}",
}


def topic_words(language: str, topic: str) -> str:
    words = TOPIC_WORDS.get(language, TOPIC_WORDS["fr"])
    return words.get(topic) or words[""]


def footer(language: str, topic: str, url: str) -> str:
    """The visible line under an e-mail's text, in the customer's language."""
    return _FOOTER.get(language, _FOOTER["fr"]).format(topic=topic_words(language, topic), url=url)


def derive_key(secret_key: str) -> bytes:
    """The unsubscribe links' own key: an HMAC of the server key, so no other HMAC can be replayed as one."""
    return hmac.new(secret_key.encode(), b"elecnet email unsubscribe v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """What a valid token names."""

    address: str
    topic: str
    language: str


@dataclass(frozen=True)
class UnsubscribeLinks:
    key: bytes
    base_url: str

    def token(self, address: str, topic: str, language: str) -> str:
        if not _TOPIC.match(topic) or "|" in address:
            raise ValueError("topic or address cannot be put in a token")
        payload = "|".join((_VERSION, language if language in _LANGUAGES else "fr", topic, address)).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def url(self, address: str, topic: str, language: str) -> str:
        return f"{self.base_url.rstrip('/')}{PATH}/{self.token(address, topic, language)}"

    def read(self, token: str) -> Unsubscribe | None:
        """What ``token`` names, or None when it is malformed, forged or altered."""
        if not _TOKEN.match(token or ""):
            return None
        body, _, signature = token.partition(".")
        try:
            payload, sent = _unb64(body), _unb64(signature)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(sent, self._sign(payload)):
            return None
        try:
            version, language, topic, address = payload.decode("utf-8").split("|")
        except (UnicodeDecodeError, ValueError):
            return None
        if version != _VERSION or language not in _LANGUAGES or not _TOPIC.match(topic) or "@" not in address:
            return None
        return Unsubscribe(address, topic, language)

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:_SIG_BYTES]
