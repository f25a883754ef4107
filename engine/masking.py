"""Masking of personal data (phone numbers, account numbers) before it reaches a log line."""

from __future__ import annotations

__all__ = ["mask"]


def mask(value: str | None, keep: int = 3) -> str:
    """``+221770000001`` -> ``+2217*******001``: enough to correlate, not to identify."""
    if not value:
        return "-"
    text = str(value)
    if len(text) <= keep + 2:
        return "*" * len(text)
    head = 5 if text.startswith("+") and len(text) > keep + 8 else 1
    return text[:head] + "*" * (len(text) - head - keep) + text[-keep:]
