"""The contract every channel keeps, so the app factory wires channels without knowing them.

``Channel`` is the contract itself, whatever carries the channel's requests: ``parse`` (the provider's
request -> ``Turn``), ``render`` (``Reply`` -> the provider's answer), ``capabilities`` and
``session_policy``. ``ChannelAdapter`` is a ``Channel`` served over the product's Flask app (USSD, SMS,
WhatsApp, web); the chatbot's is served by rasa-sdk's own server (``channels.rasa``).

An adapter turns its provider's request into a ``Turn`` (``parse``: pure and cheap, no engine),
lays the engine's ``Reply`` out in its wire format (``render``), answers anything it cannot read
in its own format (``error_response``: the one place its errors become answers; ``failure_response``
when the product, not the request, failed), declares what
its channel can show (``capabilities``) and how it keys a session (``session_policy``), and
serves its endpoints (``blueprint``). ``owns(path)`` tells the factory's error handlers which
adapter answers for a URL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from flask import Blueprint, Response

from engine import ChannelCapabilities, Engine, Reply, Turn

__all__ = ["BadRequest", "Channel", "ChannelAdapter", "KeyedBySender", "SessionPolicy"]

RequestT_contra = TypeVar("RequestT_contra", contravariant=True)
AnswerT_co = TypeVar("AnswerT_co", covariant=True)


class BadRequest(ValueError):
    """The provider's request is malformed; the message says which field and why (fixed text, no data)."""


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How a channel keys its conversations.

    ``gateway``: the provider's session id (USSD: one dial, one session); ``user``: the sender on
    this channel (SMS, WhatsApp, chat), the conversation lasting until ``idle_seconds`` pass
    without a message (``None``: the engine's default)."""

    per: Literal["gateway", "user"]
    idle_seconds: int | None = None

    @property
    def key_ends_with_session(self) -> bool:
        """Whether a key names one conversation only (a gateway's session id, never reused once ended)."""
        return self.per == "gateway"

    def key(self, channel: str, *, gateway_session: str = "", address: str = "") -> str:
        """The session key; ``BadRequest`` when the part this policy keys on is missing."""
        part = gateway_session if self.per == "gateway" else address
        if not part:
            raise BadRequest(f"no {'session id' if self.per == 'gateway' else 'sender'} to key the session on")
        return f"{channel}:{part}"


class KeyedBySender:
    """The session policy of a chat channel (SMS, WhatsApp, chatbot, web): the conversation is the sender's
    until ``idle_seconds`` pass without a message. Listed before the channel's base class."""

    idle_seconds: int

    @property
    def session_policy(self) -> SessionPolicy:
        return SessionPolicy("user", self.idle_seconds)


class Channel(ABC, Generic[RequestT_contra, AnswerT_co]):
    """One channel: parse -> ``Turn``, ``Engine.handle``, render -> the provider's answer."""

    channel: str

    @property
    @abstractmethod
    def capabilities(self) -> ChannelCapabilities:
        """What the channel can show (size, charset, options, navigation words)."""

    @property
    @abstractmethod
    def session_policy(self) -> SessionPolicy:
        """How the channel keys a session."""

    @abstractmethod
    def parse(self, request: RequestT_contra) -> Turn:
        """The provider's request as a ``Turn``; raises ``BadRequest`` when it cannot be read."""

    @abstractmethod
    def render(self, reply: Reply) -> AnswerT_co:
        """The reply in the channel's wire format."""


class ChannelAdapter(Channel[Mapping[str, Any], str]):
    """A channel served over the product's HTTP app: its endpoints, its one error answer."""

    prefix: str           # the URL prefix of its endpoints, e.g. ``/ussd/``

    @abstractmethod
    def error_response(self, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """The channel's one answer to a request it cannot serve (malformed, refused, failed)."""

    def failure_response(self) -> Response:
        """The answer when the product failed to serve a well-formed request (an unexpected error): the
        channel's error answer, unless its provider must be told to send the request again (a 5xx)."""
        return self.error_response()

    @abstractmethod
    def blueprint(self, engine: Engine) -> Blueprint:
        """The channel's endpoints, bound to the engine."""

    def owns(self, path: str) -> bool:
        return path.startswith(self.prefix)

    def preview(self, reply: Reply) -> str:
        """The reply as the flow simulator shows it, as the customer receives it: the wire answer itself,
        unless ``render`` needs a live request of the channel (the web's page needs a signed-in visit)."""
        return self.render(reply)
