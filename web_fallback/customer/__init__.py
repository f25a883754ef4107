"""The customers' web fallback at ``/web/``: sign-in by SMS code, then the dialogs as pages."""

from .adapter import CAPABILITIES, WebAdapter
from .codes import MemorySignInStore, SignInStore
from .sign_in import SignIn, SignInRules

__all__ = ["CAPABILITIES", "MemorySignInStore", "SignIn", "SignInRules", "SignInStore", "WebAdapter"]
