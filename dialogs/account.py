"""Who is calling and which account they act on: identification, account choice, linking.

Linking an account to a number (and proving who holds an account before a first PIN or a PIN
reset) rests on the amount of the account's last bill, so guessing is throttled per phone AND
per account across sessions, a success resets neither, and an unknown account answers exactly
like a wrong amount. Where the account has a registered number, a new link is confirmed with a
code sent there, and that number is told of every new link with a code to undo it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from engine.masking import mask
from engine.security_audit import SecurityEvent
from engine.steps import StepContext, StepResult

from .backends import Account, NotFound
from .codes import code_matches, code_still_out, hash_code, issue_code
from .registry import Deps, step

MAX_LINK_ATTEMPTS = 3              # per session
MAX_LINK_ATTEMPTS_PER_PHONE = 6    # per day, across sessions and accounts
MAX_LINK_ATTEMPTS_PER_ACCOUNT = 6  # per day, whoever tries: an account cannot be guessed from many phones
THROTTLE_WINDOW_SECONDS = 86_400
MAX_CODE_TRIES = 3
MAX_UNDO_TRIES_PER_PHONE = 10      # per day: the holder's ANNULER <code> replies


def account_fields(account: Account | dict[str, Any]) -> dict[str, Any]:
    """The context keys every menu may use about the current account."""
    data = account if isinstance(account, dict) else _as_item(account)
    return {
        "account_number": data["account_number"],
        "customer_name": data["customer_name"],
        "account_kind": data["kind"],
        "account_category": data["category"],
        "zone": data["zone"],
        "meter_id": data["meter_id"],
        "prepaid": data["kind"] == "prepaid",
    }


def _as_item(account: Account) -> dict[str, Any]:
    return {"account_number": account.account_number, "customer_name": account.customer_name,
            "kind": account.kind, "category": account.category, "zone": account.zone,
            "meter_id": account.meter_id}


def last_bill_proof(ctx: StepContext, deps: Deps, number: str, amount: Any, purpose: str,
                    allowed: bool = True) -> str:
    """``ok``, ``mismatch`` (unknown account and wrong amount alike) or ``locked`` (throttled).
    ``allowed=False``: the account may not be used here; counted and answered as a wrong amount."""
    # Both counters move on every try (no short-circuit), and no success resets either.
    limits = [deps.throttle.hit(f"link:phone:{ctx.user_id}", MAX_LINK_ATTEMPTS_PER_PHONE, THROTTLE_WINDOW_SECONDS),
              deps.throttle.hit(f"link:account:{number}", MAX_LINK_ATTEMPTS_PER_ACCOUNT, THROTTLE_WINDOW_SECONDS)]
    if not all(limits):
        _refused(ctx, deps, number, f"{purpose}: throttled")
        return "locked"
    try:
        verified = allowed and deps.billing.verify_last_bill(number, Decimal(str(amount)))
    except (NotFound, InvalidOperation):
        verified = False
    if not verified:
        _refused(ctx, deps, number, f"{purpose}: last bill not matched")
        return "mismatch"
    return "ok"


def _refused(ctx: StepContext, deps: Deps, number: str, detail: str) -> None:
    deps.security.record(SecurityEvent("link_refused", ctx.channel, ctx.user_id, number, detail))


@step("account.identify", outcomes={"one", "several", "unknown"})
def identify(ctx: StepContext, deps: Deps) -> StepResult:
    """Find the accounts of the calling number: its cached identity, else our links and the billing register.

    A known customer's dial is served from the cache (no back-office call, no SQL). Identifying again
    within a session (a step found the current account gone) skips the cache: something changed."""
    msisdn, cache = ctx.user_id, deps.identity
    again = "accounts" in ctx.data
    identity = cache.get(msisdn) if cache is not None and not again else None
    if identity is None:
        identity = _identity_of(msisdn, deps)
        if cache is not None and identity["accounts"]:
            cache.put(msisdn, identity)
        elif cache is not None and again:
            cache.forget(msisdn)
    items: list[dict[str, Any]] = identity["accounts"]
    language = identity["language"]
    if not items:
        return StepResult("unknown", {"linked": False, "account_count": 0}, language=language)
    data: dict[str, Any] = {"linked": True, "account_count": len(items), "accounts": items}
    if len(items) == 1:
        data.update(account_fields(items[0]))
        return StepResult("one", data, language=language)
    # The account chosen earlier in the conversation (a flow ``keeps`` it across commands), as the
    # register holds it now; dropped when no longer linked, so the menu asks again.
    if "selected_account" in ctx.data:
        data["selected_account"] = _still_linked(ctx.data["selected_account"], items)
    return StepResult("several", data, language=language)


def _still_linked(chosen: Any, items: list[dict[str, Any]]) -> dict[str, Any] | None:
    number = chosen.get("account_number") if isinstance(chosen, dict) else None
    return next((item for item in items if item["account_number"] == number), None) if number else None


def _identity_of(msisdn: str, deps: Deps) -> dict[str, Any]:
    """Who ``msisdn`` is, from the systems of record: its links (oldest first) with the accounts the
    billing register holds for it, and its language. A register account is linked only when new."""
    registered = {a.account_number: a for a in deps.billing.accounts_for_phone(msisdn)}
    numbers = [link.account_number for link in deps.links.accounts_for(msisdn)]
    for number in registered:
        if number not in numbers:
            deps.links.link(msisdn, number, "billing")
            numbers.append(number)
    accounts = [registered.get(number) or deps.billing.account(number) for number in numbers]
    language = deps.preferences.language(msisdn) or (accounts[0].language if accounts else None)
    return {"accounts": [_as_item(a) for a in accounts], "language": language}


@step("account.select", outcomes={"ok"})
def select(ctx: StepContext, deps: Deps) -> StepResult:
    """Make the account picked from the list the current one."""
    chosen = ctx.data.get("selected_account")
    if not isinstance(chosen, dict):
        return StepResult("not_found")
    return StepResult("ok", account_fields(chosen))


@step("account.link", outcomes={"ok", "confirm", "mismatch", "locked"})
def link(ctx: StepContext, deps: Deps) -> StepResult:
    """Check the amount of the account's last bill; link, or first send a code to its registered number."""
    number = str(ctx.data.get("link_account_number", ""))
    if ctx.data.get("link_code_for") == _link_claim(ctx, number) and code_still_out(
            ctx.data, "link_code_hash", "link_code_sent", ctx.now, deps.settings.code_minutes(ctx.channel)):
        # Entered again (a resumed conversation): no second code to the holder, no second try counted.
        return StepResult("confirm", {})
    attempts = int(ctx.data.get("link_attempts", 0)) + 1
    if attempts > MAX_LINK_ATTEMPTS:
        return StepResult("locked", {"link_attempts": attempts})
    verdict = last_bill_proof(ctx, deps, number, ctx.data.get("link_last_bill", "0"), "link")
    if verdict != "ok":
        return StepResult(verdict, {"link_attempts": attempts})
    account = deps.billing.account(number)
    if account.phone and account.phone != ctx.user_id and deps.outbox is not None:
        return StepResult("confirm", _send_link_code(ctx, deps, account, attempts, again=False))
    return _linked(ctx, deps, account)


@step("account.resend_link_code", outcomes={"sent", "capped", "not_found"})
def resend_link_code(ctx: StepContext, deps: Deps) -> StepResult:
    """"Send the code again" on the link code screen: a new code to the holder's number, the one before void.

    Counted as a link try, in the session (3) and for the number and the account over the day (6 each), so
    a holder's phone gets no more codes than the last-bill tries could send it. Past either, ``capped``:
    nothing is sent, and the code already sent still works."""
    number = str(ctx.data.get("link_account_number", ""))
    if not ctx.data.get("link_code_hash") or ctx.data.get("link_code_for") != _link_claim(ctx, number):
        return StepResult("not_found")   # no code of this conversation to replace: link again
    account = deps.billing.account(number)
    if not account.phone or deps.outbox is None:
        return StepResult("not_found")
    attempts = int(ctx.data.get("link_attempts", 0)) + 1
    if attempts > MAX_LINK_ATTEMPTS:
        _refused(ctx, deps, number, "link: code not sent again: the session's codes are spent")
        return StepResult("capped")
    # Both counters move (no short-circuit), as for a try of the amount.
    limits = [deps.throttle.hit(f"link:phone:{ctx.user_id}", MAX_LINK_ATTEMPTS_PER_PHONE, THROTTLE_WINDOW_SECONDS),
              deps.throttle.hit(f"link:account:{number}", MAX_LINK_ATTEMPTS_PER_ACCOUNT, THROTTLE_WINDOW_SECONDS)]
    if not all(limits):
        _refused(ctx, deps, number, "link: code not sent again: throttled")
        return StepResult("capped", {"link_attempts": attempts})
    return StepResult("sent", _send_link_code(ctx, deps, account, attempts, again=True))


def _send_link_code(ctx: StepContext, deps: Deps, account: Account, attempts: int, *, again: bool) -> dict[str, Any]:
    """A new link code to the account's registered number; what the conversation keeps of it (its hash)."""
    assert deps.outbox is not None and account.phone
    number = account.account_number
    # One message per conversation, account and try; its code made from that key (``issue_code``), so the hop
    # run again after a failed save keeps the code the holder was sent. The conversation, not the session key:
    # a chat channel's key is the sender's, used again by each of their conversations.
    dedupe_key = f"link_code:{_link_event(ctx, number)}:{attempts}"
    code, minutes = issue_code(deps.settings.code_key, dedupe_key), deps.settings.code_minutes(ctx.channel)
    queued = deps.outbox.add(kind="link_code", msisdn=account.phone, language=account.language,
                             # Valid as long as the caller's conversation, which keeps its hash.
                             payload={"code": code, "account_number": number, "requested_by": mask(ctx.user_id),
                                      "minutes": minutes},
                             dedupe_key=dedupe_key)
    if queued:
        # Every code sent is audited, the first as each one sent again; once per message queued, so a hop
        # run again (its dedupe key queues nothing new) writes no second row.
        deps.security.record(SecurityEvent("code_sent", ctx.channel, ctx.user_id, number,
                                           "link code sent again to the account holder" if again
                                           else "link code sent to the account holder"))
    # The caller's screen says the same minutes as the holder's SMS; a new code gets its own tries.
    return {"link_attempts": attempts, "link_code_hash": hash_code(code), "link_code_tries": 0,
            "link_code_tries_left": None, "link_registered": mask(account.phone), "code_minutes": minutes,
            "link_code_for": _link_claim(ctx, number), "link_code_sent": ctx.now.isoformat()}


def _link_event(ctx: StepContext, number: str) -> str:
    """Names the link of ``number`` this conversation is making: its messages' keys start with it. The
    conversation, not the session key (a chat channel's is the sender's, used again by each of their
    conversations), and the links it made before (the holder may undo one and the caller link it again):
    a hop run again names the same link, a new link is another."""
    return f"{ctx.conversation_id}:{number}:{int(ctx.data.get('links_made', 0))}"


def _link_claim(ctx: StepContext, number: str) -> str:
    """What a link code answers: this account with this amount (another typed is another try)."""
    return f"{number}:{ctx.data.get('link_last_bill', '')}"


@step("account.link_confirm", outcomes={"ok", "wrong", "locked"})
def link_confirm(ctx: StepContext, deps: Deps) -> StepResult:
    """The code sent to the account's registered number, typed by the caller."""
    tries = int(ctx.data.get("link_code_tries", 0)) + 1
    stored = str(ctx.data.get("link_code_hash") or "")
    number = str(ctx.data.get("link_account_number", ""))
    if not stored or tries > MAX_CODE_TRIES:
        _refused(ctx, deps, number, "link: code tries exhausted")
        return StepResult("locked", {"link_code_hash": None})
    if not code_matches(ctx.secrets.get("link_code", ""), stored):
        _refused(ctx, deps, number, "link: wrong code")
        return StepResult("wrong" if tries < MAX_CODE_TRIES else "locked",
                          {"link_code_tries": tries, "link_code_tries_left": MAX_CODE_TRIES - tries})
    return _linked(ctx, deps, deps.billing.account(number))


def _linked(ctx: StepContext, deps: Deps, account: Account) -> StepResult:
    # The undo code made from its notice's key, as a sent code is: a hop run again (its save lost) tells
    # the holder nothing new, and the code the holder holds is the one the link keeps.
    notice_key = f"link_notice:{_link_event(ctx, account.account_number)}"
    undo = issue_code(deps.settings.code_key, notice_key)
    deps.links.link(ctx.user_id, account.account_number, "self-service", undo_hash=hash_code(undo))
    deps.security.record(SecurityEvent("account_linked", ctx.channel, ctx.user_id, account.account_number,
                                       "self-service"))
    if account.phone and account.phone != ctx.user_id and deps.outbox is not None:
        # The holder hears of every new link, with the way to undo it.
        deps.outbox.add(kind="link_notice", msisdn=account.phone, language=account.language,
                        payload={"account_number": account.account_number, "linked_number": mask(ctx.user_id),
                                 "undo_code": undo, "undo_keyword": f"ANNULER {undo}",
                                 "undo_menu": "8 > 5"},   # Preferences > Numbers linked to the account
                        dedupe_key=notice_key)
    data = {"linked": True, "links_made": int(ctx.data.get("links_made", 0)) + 1, "account_count": 1,
            "accounts": [_as_item(account)], "link_attempts": None,
            "link_code_hash": None, "link_code_tries": None, "link_code_tries_left": None, "link_code_for": None,
            "link_code_sent": None, **account_fields(account)}
    return StepResult("ok", data)


@step("account.linked_numbers", outcomes={"some", "none", "not_holder"})
def linked_numbers(ctx: StepContext, deps: Deps) -> StepResult:
    """For the account's registered holder: the numbers others linked to it (masked), to undo one."""
    number = str(ctx.data.get("account_number", ""))
    if not number or deps.billing.account(number).phone != ctx.user_id:
        return StepResult("not_holder")
    items = [{"msisdn_masked": mask(link.msisdn), "ref": index}
             for index, link in enumerate(deps.links.linked_to(number))]
    return StepResult("some" if items else "none", {"linked_numbers": items})


@step("account.unlink", outcomes={"ok"})
def unlink(ctx: StepContext, deps: Deps) -> StepResult:
    """The holder removes the chosen link (picked again from the list: numbers never sit in the session)."""
    number = str(ctx.data.get("account_number", ""))
    chosen = ctx.data.get("linked_choice")
    if not number or deps.billing.account(number).phone != ctx.user_id or not isinstance(chosen, dict):
        return StepResult("not_found")
    links = deps.links.linked_to(number)
    index = int(chosen.get("ref", -1))
    if 0 <= index < len(links) and mask(links[index].msisdn) == chosen.get("msisdn_masked"):
        deps.links.unlink(links[index].msisdn, number)
        deps.security.record(SecurityEvent("link_undone", ctx.channel, links[index].msisdn, number,
                                           "undone by the registered holder"))
    return StepResult("ok", {"linked_numbers": None, "linked_choice": None})


@step("account.undo_by_code", outcomes={"ok", "unknown", "locked"})
def undo_by_code(ctx: StepContext, deps: Deps) -> StepResult:
    """``ANNULER <code>`` from the account's registered number: the link notice's undo, by reply.

    Only the holder's own accounts are searched, so the code is worth nothing from another number
    (the linked number included); the code is dropped from the conversation at once."""
    code = str(ctx.data.get("keyword_undo_code") or "")
    cleared: dict[str, Any] = {"keyword_undo_code": None}
    if not deps.throttle.hit(f"undo:phone:{ctx.user_id}", MAX_UNDO_TRIES_PER_PHONE, THROTTLE_WINDOW_SECONDS):
        return StepResult("locked", cleared)
    held = [a.account_number for a in deps.billing.accounts_for_phone(ctx.user_id) if a.phone == ctx.user_id]
    for number in held:
        msisdn = deps.links.undo(number, code)
        if msisdn is not None:
            deps.security.record(SecurityEvent("link_undone", ctx.channel, msisdn, number,
                                               "undone by the registered holder (undo code)"))
            return StepResult("ok", {**cleared, "undone_account": number, "undone_number": mask(msisdn)})
    for number in held:
        _refused(ctx, deps, number, "link undo: code not matched")
    return StepResult("unknown", cleared)
