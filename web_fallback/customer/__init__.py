"""The customers' web fallback at ``/web/``: sign-in by SMS code, then the dialogs as pages."""

from .adapter import CAPABILITIES, WebAdapter
from .code_budget import CodeBudget
from .codes import MemorySignInStore, SignInStore
from .sign_in import SignIn, SignInRules

__all__ = ["CAPABILITIES", "CodeBudget", "MemorySignInStore", "SignIn", "SignInRules", "SignInStore", "WebAdapter"]
