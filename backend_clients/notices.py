"""``NoticeFeedClient``: the back office's feed of events customers hear about, read by cursor
(``GET /api/v1/notices?after=<id>``). Read-only, so retried like any GET."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .http import HttpBackend
from .parsing import as_object, objects

__all__ = ["FeedNotice", "NoticeFeedClient", "NoticePage"]


@dataclass(frozen=True, slots=True)
class FeedNotice:
    id: int
    kind: str
    zone: str | None = None
    msisdn: str | None = None
    account_number: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NoticePage:
    notices: list[FeedNotice]
    next: int


def _opt(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value) if value not in (None, "") else None


def parse_page(data: Any) -> NoticePage:
    body = as_object(data)
    notices = []
    for item in objects(body, "notices"):
        fields = item.get("fields")
        notices.append(FeedNotice(int(item["id"]), str(item["kind"]), _opt(item, "zone"), _opt(item, "msisdn"),
                                  _opt(item, "account_number"), dict(fields) if isinstance(fields, dict) else {}))
    return NoticePage(notices, int(body.get("next") or 0))


class NoticeFeedClient(HttpBackend):
    name = "notices"

    def after(self, cursor: int, limit: int = 200) -> NoticePage:
        """Events after ``cursor``, oldest first. ``BackendUnavailable`` when the back office is down."""
        return self._call("GET", "/notices", params={"after": str(cursor), "limit": str(limit)}, parse=parse_page)
