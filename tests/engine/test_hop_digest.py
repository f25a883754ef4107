"""The replay record's key: standard HMAC-SHA256, so a record saved by an earlier release still replays."""

from __future__ import annotations

import hashlib
import hmac

from engine.hop_digest import HopDigest

ROOT = b"server-key-of-this-deployment-0123456789"


def _rfc2104(user_id: str, hop_id: str) -> str:
    """What the engine computed before, with the standard library's one-shot HMAC."""
    key = hmac.new(ROOT, b"engine/hop-digest/v1", hashlib.sha256).digest()
    return hmac.digest(key, f"{user_id}\x1f{hop_id}".encode(), "sha256").hex()[:32]


def test_a_gateway_retry_across_a_restart_is_still_recognised() -> None:
    # Another process (or the release before) with the same server key gives the same digest.
    for hop in ("ussd:ATUid_1\x1f", "ussd:ATUid_1\x1f1*1*98*99", "whatsapp:SM" + "9" * 40):
        assert HopDigest(ROOT).digest("+221770000001", hop) == _rfc2104("+221770000001", hop)


def test_one_callers_hop_never_matches_anothers() -> None:
    digest = HopDigest(ROOT)
    assert digest.digest("+221770000001", "ussd:ATUid_1\x1f1") != digest.digest("+221770000002", "ussd:ATUid_1\x1f1")
    assert digest.digest("+221770000001", "ussd:ATUid_1\x1f1") != HopDigest(b"another key").digest(
        "+221770000001", "ussd:ATUid_1\x1f1")


def test_each_call_starts_from_the_keyed_state() -> None:
    # The keyed states are copied, never fed: the same hop twice gives the same digest.
    digest = HopDigest(ROOT)
    first = digest.digest("+221770000001", "ussd:x\x1f1*2")
    digest.digest("+221770000001", "ussd:y\x1f9" * 50)
    assert digest.digest("+221770000001", "ussd:x\x1f1*2") == first == _rfc2104("+221770000001", "ussd:x\x1f1*2")
