"""The arrangement step and the billing system's idempotency: one plan per conversation, whatever the channel.

On USSD a conversation is the gateway's session; on a chat channel (SMS, WhatsApp) the session key is the
sender's, the same in every conversation, so a key built from it alone would make a plan asked for months
later land on the first one (the billing system answers an idempotent replay with what it recorded then)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from app.storage.throttle import MemoryThrottle
from dialogs.arrangements import PROTECTED_NODE
from dialogs.backends import Arrangement
from dialogs.registry import Deps, DialogRegistry, DialogSettings
from engine.steps import StepContext, StepResult

NUMBER = "+221770000001"
ACCOUNT = "1000001"


class Billing:
    """The billing system's arrangements: an idempotency key seen before gets the plan it made then."""

    def __init__(self) -> None:
        self.made: dict[str, Arrangement] = {}

    def create_arrangement(self, account_number: str, kind: str, months: int, idempotency_key: str) -> Arrangement:
        if idempotency_key not in self.made:
            self.made[idempotency_key] = Arrangement(f"ARR-{len(self.made) + 1}", kind,  # type: ignore[arg-type]
                                                     date(2026, 11, 27), "active", months,
                                                     ((date(2026, 12, 27), Decimal(12500)),))
        return self.made[idempotency_key]


def _confirm(deps: Deps, session_key: str, conversation: str) -> StepResult:
    step = DialogRegistry(deps).get("arrangements.create")
    assert step is not None
    data: dict[str, Any] = {"account_number": ACCOUNT, "arr_kind": "deferral", "arr_months": 1,
                            "pin_verified": PROTECTED_NODE}
    return step(StepContext(user_id=NUMBER, channel="whatsapp", language="fr", session_key=session_key,
                            data=MappingProxyType(data), params=MappingProxyType({}), secrets=MappingProxyType({}),
                            now=datetime(2026, 11, 27, 9, tzinfo=UTC), conversation=conversation))


def test_a_plan_asked_for_in_a_later_whatsapp_conversation_is_a_new_plan_and_a_replay_is_not():
    billing = Billing()
    deps = Deps(billing=billing, links=None, preferences=None,  # type: ignore[arg-type]
                throttle=MemoryThrottle(), settings=DialogSettings())
    key = f"whatsapp:{NUMBER}"                           # a chat channel: the sender's key, every conversation
    first = _confirm(deps, key, f"{key}@1764230400")
    replayed = _confirm(deps, key, f"{key}@1764230400")  # the same confirmation again (a provider's retry)
    later = _confirm(deps, key, f"{key}@1780000000")     # months later, a new conversation
    assert first.data["arr_id"] == replayed.data["arr_id"] == "ARR-1"
    assert later.data["arr_id"] == "ARR-2"
