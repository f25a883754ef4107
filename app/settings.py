"""The one settings object of the product, read from the environment (see the README's table)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["SETTING_REFUSED", "SettingRefused", "Settings", "content_sids", "utc_now"]

# The status of every start-up refusal (``app.secret_gate``, ``app.menu_gate``): gunicorn's master reads it as "a
# worker could not boot" and stops, where after another it would start the worker again, forever.
SETTING_REFUSED = 3


class SettingRefused(ValueError):
    """A setting's value the product will not run with; the message names the variable and what it accepts."""


def utc_now() -> datetime:
    """The wall clock, aware UTC: the product's clock outside tests."""
    return datetime.now(UTC)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default).strip() or default


def _minutes_within_a_day(name: str, default: int) -> int:
    """Whole minutes from 0 to 1 440 (WhatsApp's 24-hour window): more would send free text WhatsApp refuses."""
    return _whole(name, default, 0, 24 * 60, "minutes")


def _whole(name: str, default: int, lowest: int, highest: int, unit: str) -> int:
    """A whole number of ``unit`` from ``lowest`` to ``highest``; anything else is ``SettingRefused``."""
    raw = _env(name, str(default))
    if not raw.isdigit() or not lowest <= int(raw) <= highest:
        raise SettingRefused(f"{name}: '{raw[:40]}' is not a whole number of {unit} from {lowest} to {highest}")
    return int(raw)


def _vend_waits(first: int, most: int) -> tuple[int, int]:
    """The vend retry's first wait and longest wait: whole seconds, a first wait from 1 s to an hour (the customer
    waits for a code already paid for), the longest from it to a day; anything else is ``SettingRefused``."""
    first = _whole("VEND_FIRST_WAIT_SECONDS", first, 1, 3600, "seconds")
    most = _whole("VEND_MAX_WAIT_SECONDS", most, first, 86_400, "seconds")
    return first, most


def _list(name: str) -> tuple[str, ...]:
    """A comma-separated variable as a tuple of its non-empty items."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _port(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _port_or_off(name: str, default: int) -> int | None:
    """A port, ``default`` when unset, ``None`` when set to ``off`` (the process is not started)."""
    value = os.environ.get(name, "").strip()
    if value.lower() == "off":
        return None
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    menus_path: str = "config/menus.yaml"
    database_url: str = "sqlite:///var/engine.db"
    # Once connected to PostgreSQL, how long a statement may run and wait for another session's lock before it
    # is cancelled (the hop then answers "service unavailable"); 0 for no limit (app/storage/__init__.py).
    database_statement_timeout_seconds: float = 5.0
    database_lock_timeout_seconds: float = 3.0
    redis_url: str | None = None
    backoffice_url: str = "http://127.0.0.1:8001"
    backoffice_api_key: str | None = field(default=None, repr=False)
    # Worst case of one back-end call, (connect + read) x (1 + retries), stays under the hop deadline:
    # the USSD gateway gives up after 10-15 s.
    backend_connect_timeout: float = 1.0
    backend_read_timeout: float = 3.0
    backend_retries: int = 1
    hop_deadline_seconds: float = 8.0
    session_ttl_seconds: int = 180
    resume_window_seconds: int = 120
    # How long the END that closed a USSD session is kept with its spent id for the gateway's retry of that hop.
    ended_replay_seconds: int = 300
    default_region: str = "SN"
    public_base_url: str = "http://127.0.0.1:8000"
    payment_callback_secret: str = field(default="", repr=False)
    # Server key for HMACs the product keeps (hop digests, pseudonymous ids in the security audit).
    secret_key: str = field(default="", repr=False)
    # Fernet key(s) sealing one-time codes in the notification outbox (app/storage/outbox_seal.py): the engine
    # seals, the worker opens. Empty: a random key per process (make run generates one into var/).
    outbox_seal_key: str = field(default="", repr=False)
    # A code or token sent on WhatsApp stays sealed until its delivery is final (delivered, read, failed, or sent
    # again by SMS), at most this long after the send: a late "outside the 24-hour window" can still send it by
    # SMS. Then it is erased (app/notify.py).
    outbox_keep_sent_secrets_minutes: int = 60
    # A reply showing no code or token (a bill summary), sent on WhatsApp, stays sealed this long after the send, so
    # that a late "outside the 24-hour window" still brings it by SMS (app/notify.py, REPLY_PLAIN): the customer asked
    # for it. At most a week, when the retention blanks outbox payloads anyway.
    outbox_keep_plain_replies_hours: int = 24
    log_level: str = "INFO"
    # Who may call the USSD callback (channels/gateway_guard.py): the gateway's shared token, the
    # networks it calls from (CIDRs; empty: any), and the proxies whose X-Forwarded-For we believe.
    ussd_gateway_token: str = field(default="", repr=False)
    ussd_allowed_networks: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    # /metrics on a separate internal port (served by `python -m app serve`) instead of the public one.
    metrics_port: int | None = None
    # Notifications (app/notify.py): Africa's Talking SMS through its SDK; AT_API_URL points it elsewhere.
    notifications_path: str = ""          # empty: notifications.yaml beside the menus file
    at_username: str = "sandbox"
    at_api_key: str = field(default="", repr=False)
    at_api_url: str | None = None
    at_sender_id: str | None = None
    notify_interval_seconds: float = 1.0
    twilio_account_sid: str = ""
    twilio_auth_token: str = field(default="", repr=False)
    twilio_whatsapp_from: str = ""
    twilio_api_url: str | None = None
    # Approved WhatsApp templates in Twilio's Content API, per template name (``whatsapp_template`` in
    # notifications.yaml) and language: TWILIO_CONTENT_SIDS="outage_declared:fr=HX...,outage_declared:en=HX...".
    # A kind whose template has no content SID in the message's language goes through Twilio as free text.
    twilio_content_sids: tuple[tuple[str, str, str], ...] = ()
    # WhatsApp conversations (channels/whatsapp_twilio.py, channels/whatsapp_meta.py). Twilio signs the
    # public URL it called: TWILIO_WEBHOOK_URL is that public base (empty: PUBLIC_BASE_URL). Meta signs
    # the raw body with the app secret; the verify token answers its subscription check; replies go out
    # through the Graph API with the access token. A missing secret closes its endpoint.
    twilio_webhook_url: str = ""
    meta_app_secret: str = field(default="", repr=False)
    meta_verify_token: str = field(default="", repr=False)
    meta_access_token: str = field(default="", repr=False)
    graph_api_url: str = "https://graph.facebook.com/v21.0"
    # Our business number's id at Meta, from which the worker sends WhatsApp notifications (replies go
    # from the number the customer wrote to). With the access token it makes Meta the notifications'
    # WhatsApp sender, even when Twilio is configured too (Meta's templates reach customers outside the
    # 24-hour window); without it, Twilio sends them when configured.
    meta_phone_number_id: str = ""
    whatsapp_session_idle_seconds: int = 300
    # How long after a customer's last WhatsApp message a notification with an approved template still goes
    # as free text (WhatsApp's customer-service window is 24 hours; the margin covers a late webhook and the
    # outbox's own delay). 0: always the template.
    whatsapp_window_minutes: int = 1410
    # E-mail notifications (backend_clients/smtp_email.py): smtp://user:password@host:port or smtps://.
    smtp_url: str = field(default="", repr=False)     # may carry a password
    email_from: str = "notifications@elecnet.example"
    # Mobile-money operators offered to customers: PAYMENT_WALLETS="code:Name,code:Name" (order shown).
    payment_wallets: tuple[tuple[str, str], ...] = (("orange_money", "Orange Money"), ("wave", "Wave"),
                                                    ("free_money", "Free Money"))
    # The worker asks the provider about a payment pending this long without a callback (then again
    # after as long, five times in all before it is "unconfirmed").
    payment_status_after_seconds: int = 300
    # A payment without the provider's id (our write of it failed, or its answer was lost) is asked about by
    # our key, the waits doubling up to an hour, for this long; then it is "unresolved", left to an agent.
    payment_unrecorded_give_up_seconds: int = 86_400
    # A payment never sent to the provider (``not_started``, nothing charged) is deleted this many days after it was
    # created by the retention purge; one the provider never answered about is ``unanswered`` and kept for an agent.
    payment_not_started_keep_days: int = 30
    # A prepaid purchase settled by hand whose token the vending system did not give (unreachable): the worker
    # asks again this long after the first try, the waits doubling up to VEND_MAX_WAIT_SECONDS (dialogs/vending.py).
    vend_first_wait_seconds: int = 30
    vend_max_wait_seconds: int = 3600
    # How often the worker applies the retention purge (app/storage/retention.py); 0 turns it off.
    purge_interval_seconds: int = 3600
    # SMS keyword commands (channels/sms.py): a conversation by SMS ends after this long without a message.
    sms_session_idle_seconds: int = 300
    # Consent, night and pace (app/notify.py): no non-urgent message during QUIET_HOURS in QUIET_HOURS_TZ
    # ("" turns them off); each provider's messages per second, shared by all workers through Redis.
    quiet_hours: str = "21-7"
    quiet_hours_tz: str = "Africa/Dakar"
    send_rates: str = "africastalking=10,twilio=5,meta=20,smtp=20"
    # How often the worker reads the back office's notice feed (zone outages, bills ...).
    notice_poll_seconds: float = 2.0
    # How long who a number is (accounts, language) is kept in Redis; dropped at once when it changes.
    identity_cache_seconds: int = 600
    # Now, for everything that reads a date (dialog steps' due dates and day windows, session times,
    # the worker's passes): never from the environment; tests set it (tests/support/clock.py).
    clock: Callable[[], datetime] = field(default=utc_now, repr=False, compare=False)
    # The web fallback (/web/): a signed-in visit ends after this long without a page, and after
    # WEB_MAX_SECONDS in all; a sign-in code works for WEB_CODE_SECONDS.
    web_idle_seconds: int = 900
    web_max_seconds: int = 8 * 3600
    web_code_seconds: int = 300
    # Sign-in codes sent to requesters nobody has identified yet (the web's and the chat's sign-in together), a
    # minute and an hour, across every process (web_fallback/customer/code_budget.py): what SMS pumping can
    # cost at most. A customer already identified (USSD, SMS, WhatsApp, signed in) is never counted.
    sign_in_codes_per_minute: int = 20
    sign_in_codes_per_hour: int = 300
    # First-PIN codes by SMS to one number (a prepaid caller without a PIN) in a day, across its sessions: past
    # it the caller is told to call customer service and no SMS goes (dialogs/security.py, send_pin_code).
    pin_codes_per_day: int = 6
    # Agents (web_fallback/agents): OpenID Connect sign-in, roles from a claim and/or a list
    # ("who=role+role,..."), the marked local sign-in of `make run`, idle timeout, look-ups per window.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    oidc_roles_claim: str = "roles"
    agent_roles: str = ""
    agents_dev_signin: bool = False
    agent_idle_seconds: int = 900
    agent_lookup_limit: int = 20
    agent_lookup_window_seconds: int = 600
    agent_payment_action_limit: int = 10      # actions on payments to resolve per agent in the same window
    # The simulator's sandbox: its back office (the demo one), its own database, the demo numbers it plays.
    simulator_backoffice_url: str = ""        # empty: BACKOFFICE_URL (the reference back office in `make run`)
    simulator_database_url: str = "sqlite:///var/simulator.db"
    simulator_numbers: tuple[str, ...] = ("+221770000001", "+221770000002", "+221770000003", "+221770009999")
    # The chatbot's action server (python -m app actions, app/actions_server.py): the token the Rasa
    # server sends, the secret front channels sign verified numbers with (channels/rasa/identity.py),
    # where it listens (loopback: the Rasa server reaches it by network placement), idle timeout.
    rasa_action_token: str = field(default="", repr=False)
    rasa_identity_secret: str = field(default="", repr=False)
    rasa_actions_host: str = "127.0.0.1"
    rasa_actions_port: int | None = 5055        # None: RASA_ACTIONS_PORT=off, no action server
    rasa_session_idle_seconds: int = 900
    rasa_chat_sign_in: bool = True
    # New chatbot conversations nobody signed in (guests: the bill simulator) a minute, across every action
    # server process (channels/rasa/guests.py); 0 admits none.
    rasa_guests_per_minute: int = 60

    @classmethod
    def from_env_or_refuse(cls) -> Settings:
        """``from_env`` for a process starting: a setting it refuses stops the process with its message (exit
        status ``SETTING_REFUSED``), no traceback."""
        try:
            return cls.from_env()
        except SettingRefused as exc:
            print(f"{exc}. Not started: fix it in the environment.", file=sys.stderr, flush=True)
            raise SystemExit(SETTING_REFUSED) from None

    @classmethod
    def from_env(cls) -> Settings:
        vend_first, vend_most = _vend_waits(cls.vend_first_wait_seconds, cls.vend_max_wait_seconds)
        return cls(
            menus_path=_env("MENUS_PATH", cls.menus_path),
            database_url=_env("DATABASE_URL", cls.database_url),
            database_statement_timeout_seconds=float(_env("DATABASE_STATEMENT_TIMEOUT_SECONDS",
                                                          str(cls.database_statement_timeout_seconds))),
            database_lock_timeout_seconds=float(_env("DATABASE_LOCK_TIMEOUT_SECONDS",
                                                     str(cls.database_lock_timeout_seconds))),
            redis_url=os.environ.get("REDIS_URL") or None,
            backoffice_url=_env("BACKOFFICE_URL", cls.backoffice_url).rstrip("/"),
            backoffice_api_key=os.environ.get("BACKOFFICE_API_KEY") or None,
            backend_connect_timeout=float(_env("BACKEND_CONNECT_TIMEOUT", str(cls.backend_connect_timeout))),
            backend_read_timeout=float(_env("BACKEND_READ_TIMEOUT", str(cls.backend_read_timeout))),
            backend_retries=int(_env("BACKEND_RETRIES", str(cls.backend_retries))),
            hop_deadline_seconds=float(_env("HOP_DEADLINE_SECONDS", str(cls.hop_deadline_seconds))),
            session_ttl_seconds=int(_env("SESSION_TTL_SECONDS", str(cls.session_ttl_seconds))),
            resume_window_seconds=int(_env("RESUME_WINDOW_SECONDS", str(cls.resume_window_seconds))),
            ended_replay_seconds=int(_env("ENDED_REPLAY_SECONDS", str(cls.ended_replay_seconds))),
            default_region=_env("DEFAULT_REGION", cls.default_region),
            public_base_url=_env("PUBLIC_BASE_URL", cls.public_base_url).rstrip("/"),
            payment_callback_secret=os.environ.get("PAYMENT_CALLBACK_SECRET", ""),
            secret_key=os.environ.get("SECRET_KEY", ""),
            outbox_seal_key=os.environ.get("OUTBOX_SEAL_KEY", "").strip(),
            outbox_keep_sent_secrets_minutes=int(_env("OUTBOX_KEEP_SENT_SECRETS_MINUTES",
                                                      str(cls.outbox_keep_sent_secrets_minutes))),
            outbox_keep_plain_replies_hours=_whole("OUTBOX_KEEP_PLAIN_REPLIES_HOURS",
                                                   cls.outbox_keep_plain_replies_hours, 1, 7 * 24, "hours"),
            log_level=_env("LOG_LEVEL", cls.log_level),
            ussd_gateway_token=os.environ.get("USSD_GATEWAY_TOKEN", "").strip(),
            ussd_allowed_networks=_list("USSD_ALLOWED_NETWORKS"),
            trusted_proxies=_list("TRUSTED_PROXIES"),
            metrics_port=_port("METRICS_PORT"),
            notifications_path=os.environ.get("NOTIFICATIONS_PATH", "").strip(),
            at_username=_env("AT_USERNAME", cls.at_username),
            at_api_key=os.environ.get("AT_API_KEY", ""),
            at_api_url=os.environ.get("AT_API_URL") or None,
            at_sender_id=os.environ.get("AT_SENDER_ID") or None,
            notify_interval_seconds=float(_env("NOTIFY_INTERVAL_SECONDS", str(cls.notify_interval_seconds))),
            twilio_account_sid=os.environ.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN", ""),
            twilio_whatsapp_from=os.environ.get("TWILIO_WHATSAPP_FROM", ""),
            twilio_api_url=os.environ.get("TWILIO_API_URL") or None,
            twilio_content_sids=content_sids(os.environ.get("TWILIO_CONTENT_SIDS", "")),
            twilio_webhook_url=os.environ.get("TWILIO_WEBHOOK_URL", "").strip().rstrip("/"),
            meta_app_secret=os.environ.get("META_APP_SECRET", "").strip(),
            meta_verify_token=os.environ.get("META_VERIFY_TOKEN", "").strip(),
            meta_access_token=os.environ.get("META_ACCESS_TOKEN", "").strip(),
            graph_api_url=_env("GRAPH_API_URL", cls.graph_api_url).rstrip("/"),
            meta_phone_number_id=os.environ.get("META_PHONE_NUMBER_ID", "").strip(),
            whatsapp_session_idle_seconds=int(_env("WHATSAPP_SESSION_IDLE_SECONDS",
                                                   str(cls.whatsapp_session_idle_seconds))),
            whatsapp_window_minutes=_minutes_within_a_day("WHATSAPP_WINDOW_MINUTES", cls.whatsapp_window_minutes),
            smtp_url=os.environ.get("SMTP_URL", "").strip(),
            email_from=_env("EMAIL_FROM", cls.email_from),
            payment_wallets=_wallets(os.environ.get("PAYMENT_WALLETS", "")) or cls.payment_wallets,
            payment_status_after_seconds=int(_env("PAYMENT_STATUS_AFTER_SECONDS",
                                                  str(cls.payment_status_after_seconds))),
            payment_unrecorded_give_up_seconds=int(_env("PAYMENT_UNRECORDED_GIVE_UP_SECONDS",
                                                        str(cls.payment_unrecorded_give_up_seconds))),
            payment_not_started_keep_days=int(_env("PAYMENT_NOT_STARTED_KEEP_DAYS",
                                                   str(cls.payment_not_started_keep_days))),
            purge_interval_seconds=int(_env("PURGE_INTERVAL_SECONDS", str(cls.purge_interval_seconds))),
            vend_first_wait_seconds=vend_first, vend_max_wait_seconds=vend_most,
            sms_session_idle_seconds=int(_env("SMS_SESSION_IDLE_SECONDS", str(cls.sms_session_idle_seconds))),
            quiet_hours=os.environ.get("QUIET_HOURS", cls.quiet_hours),
            quiet_hours_tz=_env("QUIET_HOURS_TZ", cls.quiet_hours_tz),
            send_rates=os.environ.get("SEND_RATES", cls.send_rates),
            notice_poll_seconds=float(_env("NOTICE_POLL_SECONDS", str(cls.notice_poll_seconds))),
            identity_cache_seconds=int(_env("IDENTITY_CACHE_SECONDS", str(cls.identity_cache_seconds))),
            web_idle_seconds=int(_env("WEB_IDLE_SECONDS", str(cls.web_idle_seconds))),
            web_max_seconds=int(_env("WEB_MAX_SECONDS", str(cls.web_max_seconds))),
            web_code_seconds=int(_env("WEB_CODE_SECONDS", str(cls.web_code_seconds))),
            sign_in_codes_per_minute=int(_env("SIGN_IN_CODES_PER_MINUTE", str(cls.sign_in_codes_per_minute))),
            sign_in_codes_per_hour=int(_env("SIGN_IN_CODES_PER_HOUR", str(cls.sign_in_codes_per_hour))),
            pin_codes_per_day=int(_env("PIN_CODES_PER_DAY", str(cls.pin_codes_per_day))),
            oidc_issuer=os.environ.get("OIDC_ISSUER", "").strip().rstrip("/"),
            oidc_client_id=os.environ.get("OIDC_CLIENT_ID", "").strip(),
            oidc_client_secret=os.environ.get("OIDC_CLIENT_SECRET", ""),
            oidc_roles_claim=_env("OIDC_ROLES_CLAIM", cls.oidc_roles_claim),
            agent_roles=os.environ.get("AGENT_ROLES", ""),
            agents_dev_signin=os.environ.get("AGENTS_DEV_SIGNIN", "").strip() == "1",
            agent_idle_seconds=int(_env("AGENT_IDLE_SECONDS", str(cls.agent_idle_seconds))),
            agent_lookup_limit=int(_env("AGENT_LOOKUP_LIMIT", str(cls.agent_lookup_limit))),
            agent_lookup_window_seconds=int(_env("AGENT_LOOKUP_WINDOW_SECONDS", str(cls.agent_lookup_window_seconds))),
            agent_payment_action_limit=int(_env("AGENT_PAYMENT_ACTION_LIMIT", str(cls.agent_payment_action_limit))),
            simulator_backoffice_url=os.environ.get("SIMULATOR_BACKOFFICE_URL", "").strip().rstrip("/"),
            simulator_database_url=_env("SIMULATOR_DATABASE_URL", cls.simulator_database_url),
            simulator_numbers=_list("SIMULATOR_NUMBERS") or cls.simulator_numbers,
            rasa_action_token=os.environ.get("RASA_ACTION_TOKEN", "").strip(),
            rasa_identity_secret=os.environ.get("RASA_IDENTITY_SECRET", "").strip(),
            rasa_actions_host=_env("RASA_ACTIONS_HOST", cls.rasa_actions_host),
            rasa_actions_port=_port_or_off("RASA_ACTIONS_PORT", 5055),
            rasa_session_idle_seconds=int(_env("RASA_SESSION_IDLE_SECONDS", str(cls.rasa_session_idle_seconds))),
            rasa_chat_sign_in=_env("RASA_CHAT_SIGN_IN", "1") not in ("0", "off", "false", "no"),
            rasa_guests_per_minute=int(_env("RASA_GUESTS_PER_MINUTE", str(cls.rasa_guests_per_minute))),
        )


_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


def content_sids(value: str) -> tuple[tuple[str, str, str], ...]:
    """``"outage_declared:fr=HX...,outage_declared:en=HX..."`` -> ((name, language, content SID), ...);
    ``ValueError`` naming the item that is not ``name:language=HX`` + 32 hex digits."""
    found = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        key, _, sid = item.partition("=")
        name, _, language = key.strip().partition(":")
        if not name.strip() or not language.strip() or not _CONTENT_SID.match(sid.strip()):
            raise ValueError(f"TWILIO_CONTENT_SIDS: '{item}' is not template:language=HX... (a Content SID, "
                             "HX and 32 hex digits)")
        found.append((name.strip(), language.strip(), sid.strip()))
    return tuple(found)


def _wallets(value: str) -> tuple[tuple[str, str], ...]:
    """``"orange_money:Orange Money,wave:Wave"`` -> (("orange_money", "Orange Money"), ("wave", "Wave"))."""
    found = []
    for item in value.split(","):
        code, _, name = item.strip().partition(":")
        if code.strip():
            found.append((code.strip(), name.strip() or code.strip()))
    return tuple(found)
