"""The chatbot channel (Rasa): a rasa-sdk action that makes one engine hop per user message."""

from .actions import ACTION_NAME, ElecnetTurn, build_executor
from .channel import CAPABILITIES, CHANNEL, CHOICE_ENTITY, RasaChannel, Rendered
from .guests import GuestBudget
from .identity import CLIENT_KEY, IDENTITY_KEY, IdentityVerifier, sign_client, sign_identity
from .sign_in import ChatLinks, ChatSignIn, MemoryChatLinks

__all__ = ["ACTION_NAME", "CAPABILITIES", "CHANNEL", "CHOICE_ENTITY", "CLIENT_KEY", "IDENTITY_KEY", "ChatLinks", "ChatSignIn",
           "ElecnetTurn", "GuestBudget", "IdentityVerifier", "MemoryChatLinks", "RasaChannel", "Rendered", "build_executor",
           "sign_client", "sign_identity"]
