"""arrangements dialog steps."""

from __future__ import annotations
