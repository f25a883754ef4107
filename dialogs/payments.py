"""payments dialog steps."""

from __future__ import annotations
