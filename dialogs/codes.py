"""One-time codes (link confirmation, link undo, first-PIN proof, e-mail confirmation) as the dialogs use them:
the product's one way of making and keeping a code (``engine.one_time_codes``)."""

from __future__ import annotations

from engine.one_time_codes import code_matches, hash_code, new_code

__all__ = ["code_matches", "hash_code", "new_code"]
