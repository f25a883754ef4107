"""The app factory: the one place that knows every concrete piece and wires them together."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
import requests
from flask import Flask, Response, g, jsonify, request
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException, InternalServerError

from backend_clients import BillingClient, ClientConfig, IncidentClient, MeteringClient, PaymentClient
from backend_clients.africastalking_sms import AfricasTalkingSms
from backend_clients.meta_notifier import MetaWhatsAppNotifier
from backend_clients.meta_whatsapp import MetaWhatsApp
from backend_clients.notices import NoticeFeedClient
from backend_clients.smtp_email import SmtpEmail
from backend_clients.twilio_whatsapp import TwilioWhatsApp
from channels import sms_delivery, twilio_status
from channels.adapter import ChannelAdapter
from channels.answer_ledger import AnswerLedger, MemoryAnswerLedger
from channels.gateway_guard import GatewayGuard, parse_networks
from channels.payment_callback import PATH as CALLBACK_PATH
from channels.payment_callback import Applied, CallbackEvent, payment_callback_blueprint
from channels.sms import PROVIDER as SMS_PROVIDER
from channels.sms import SmsAdapter
from channels.sms_delivery import DeliveryReport, sms_delivery_blueprint
from channels.sms_inbox import InboxDrain, KeptRoute
from channels.twilio_status import twilio_status_blueprint
from channels.ussd import UssdAdapter
from channels.ussd_wsgi import UssdFastPath
from channels.whatsapp_meta import PROVIDER as META_PROVIDER
from channels.whatsapp_meta import MetaWhatsAppAdapter
from channels.whatsapp_twilio import PROVIDER as TWILIO_PROVIDER
from channels.whatsapp_twilio import TwilioWhatsAppAdapter
from dialogs.arrangements import load_rules
from dialogs.payments import settle_provider_result
from dialogs.registry import Deps, DialogRegistry, DialogSettings
from dialogs.stores import IdentityCache, ProviderResult, Throttle
from dialogs.tariffs import load_tariff
from engine import (
    Engine,
    EngineLimits,
    FlowSet,
    HopObserver,
    MemorySessionStore,
    RedisSessionStore,
    SecurityAudit,
    SessionStore,
)
from engine.one_time_codes import code_key
from engine.redis_url import redis_from_url
from menus import load_menus
from web_fallback.agents import error_page as agents_error
from web_fallback.agents import owns as agents_page
from web_fallback.customer import CodeBudget, MemorySignInStore, SignIn, SignInRules, SignInStore, WebAdapter
from web_fallback.customer.unsubscribe import unsubscribe_blueprint
from web_fallback.customer.unsubscribe_links import UnsubscribeLinks, derive_key

from .agents_wiring import mount_agents
from .broadcast import NoticeRelay
from .code_validity import session_seconds, validity_problems
from .email_letters import UnsubscribableEmail
from .logging_setup import configure_logging
from .notify import Dispatcher, NotificationTemplates, SmsSender
from .ops import Metrics, ops_blueprint
from .pace import MemoryPace, Pace, RedisPace, parse_rates
from .quiet_hours import QuietHours
from .settings import Settings
from .sms_replies import KIND as SMS_REPLY
from .sms_replies import WHATSAPP_KIND as WHATSAPP_REPLY
from .sms_replies import OutboxReplies, reply_keys
from .storage import (
    MemoryThrottle,
    RedisThrottle,
    SqlAuditSink,
    SqlOutbox,
    SqlPaymentLedger,
    SqlPendingTickets,
    SqlSecurityAudit,
    make_sessions,
)
from .storage.answer_ledger import RedisAnswerLedger
from .storage.answered import SqlAnswers
from .storage.consent import SqlConsent
from .storage.contacts import SqlContacts
from .storage.delivery import SqlDeliveryQueue
from .storage.email_stops import SqlEmailStops
from .storage.identity_cache import (
    ForgetfulAccountLinks,
    ForgetfulContacts,
    ForgetfulPinVault,
    ForgetfulPreferences,
    MemoryIdentityCache,
    RedisIdentityCache,
)
from .storage.inbox_mark import RedisInboxMark
from .storage.outbox_seal import OutboxSeal
from .storage.sign_in_codes import RedisSignInStore
from .storage.sms_inbox import SqlInbox
from .storage.whatsapp_windows import SqlWhatsAppWindows
from .whatsapp_letters import (
    WINDOW_CLOSED,
    MetaWhatsAppLetters,
    TwilioWhatsAppLetters,
    content_sid_problems,
    meta_status_recorder,
    twilio_status_recorder,
)

__all__ = ["build_deps", "build_dispatcher", "build_durable_answers", "build_engine", "build_identity_cache",
           "build_inbox_drain", "build_notice_relay", "build_pace", "build_sessions", "build_unsubscribe_links", "build_whatsapp_senders", "create_app",
           "settler"]

log = logging.getLogger("app")

MAX_BODY_BYTES = 16 * 1024


def _store(settings: Settings, identity: IdentityCache | None = None) -> SessionStore:
    if settings.redis_url:
        # The caller's cached identity is read with the session, in the same round trip.
        ahead = identity if isinstance(identity, RedisIdentityCache) else None
        return RedisSessionStore.from_url(settings.redis_url, read_ahead=ahead)
    log.warning("REDIS_URL is not set: sessions are kept in this process only (embedded default; "
                "one worker, lost on restart). Set REDIS_URL in production.")
    return MemorySessionStore()


def _server_key(settings: Settings) -> bytes:
    """The key behind the engine's replay records (HMACs); every process serving the same sessions
    must share it, so production sets SECRET_KEY. Without it, a random key for this process."""
    if settings.secret_key:
        return settings.secret_key.encode()
    log.warning("SECRET_KEY is not set: using a random key for this process. Set SECRET_KEY (the same "
                "in every worker) so that a replayed hop is recognised whichever worker receives it.")
    return secrets.token_bytes(32)


def build_sessions(settings: Settings, statement_timeout: float | None = None) -> sessionmaker[Session]:
    """The product's database sessions, each statement and lock wait bounded by the settings
    (``statement_timeout`` replaces the statement's bound: the retention purge's long deletes)."""
    return make_sessions(settings.database_url, lock_timeout=settings.database_lock_timeout_seconds,
                         statement_timeout=(settings.database_statement_timeout_seconds
                                            if statement_timeout is None else statement_timeout))


def build_security_audit(settings: Settings, sessions: sessionmaker[Session]) -> SqlSecurityAudit:
    """Security events into the ``security_events`` table, subjects pseudonymised with ``SECRET_KEY``."""
    if not settings.secret_key:
        log.warning("SECRET_KEY is not set: security events are pseudonymised with an empty key, which anyone "
                    "can recompute. Set SECRET_KEY (make run generates one into var/).")
    return SqlSecurityAudit(sessions, settings.secret_key)


def build_identity_cache(settings: Settings, client: redis.Redis | None) -> IdentityCache:
    """Who a number is, cached: in Redis (shared by every worker), else in this process only."""
    if client is not None:
        return RedisIdentityCache(client, settings.identity_cache_seconds, settings.secret_key.encode())
    return MemoryIdentityCache(settings.identity_cache_seconds)


def build_deps(settings: Settings, sessions: sessionmaker[Session],
               security: SecurityAudit | None = None, callback_path: str = CALLBACK_PATH,
               throttle: Throttle | None = None) -> Deps:
    """The concrete back-end clients and repositories behind the dialogs' ports; the provider calls back on
    ``callback_path`` under ``PUBLIC_BASE_URL``. The guessing limits count in ``throttle`` when given (a
    test's counter on a Redis of its own), else in ``REDIS_URL``'s Redis, else in this process."""
    consent = SqlConsent(sessions)   # also the Subscriptions: every alert toggle lands in the consent history
    client_config = ClientConfig(base_url=settings.backoffice_url, api_key=settings.backoffice_api_key,
                                 connect_timeout=settings.backend_connect_timeout,
                                 read_timeout=settings.backend_read_timeout, retries=settings.backend_retries)
    client = redis_from_url(settings.redis_url, socket_timeout=1.0) if settings.redis_url else None
    identity = build_identity_cache(settings, client)
    return Deps(billing=BillingClient(client_config), links=ForgetfulAccountLinks(sessions, identity),
                preferences=ForgetfulPreferences(sessions, identity), metering=MeteringClient(client_config),
                payments=PaymentClient(client_config), incidents=IncidentClient(client_config),
                pins=ForgetfulPinVault(sessions, identity), subscriptions=consent,
                outbox=SqlOutbox(sessions, OutboxSeal.from_setting(settings.outbox_seal_key, settings.secret_key), clock=settings.clock),
                ledger=SqlPaymentLedger(sessions, clock=settings.clock),
                pending_tickets=SqlPendingTickets(sessions),
                throttle=throttle or (RedisThrottle(client) if client is not None else MemoryThrottle()),
                identity=identity,
                security=security or build_security_audit(settings, sessions),
                settings=DialogSettings(payment_callback_url=f"{settings.public_base_url}{callback_path}",
                                        wallets=settings.payment_wallets,
                                        session_seconds=session_seconds(settings),
                                        default_session_seconds=settings.session_ttl_seconds,
                                        pin_codes_per_day=settings.pin_codes_per_day,
                                        vend_first_wait_seconds=settings.vend_first_wait_seconds,
                                        vend_max_wait_seconds=settings.vend_max_wait_seconds,
                                        code_key=code_key(settings.secret_key)),
                consent=consent, contacts=ForgetfulContacts(sessions, identity))


def build_engine(settings: Settings, store: SessionStore | None = None,
                 observer: HopObserver | None = None, callback_path: str = CALLBACK_PATH,
                 throttle: Throttle | None = None) -> tuple[Engine, dict[str, Any]]:
    """The engine and the concrete pieces behind it (for readiness checks and tests)."""
    sessions = build_sessions(settings)
    security = build_security_audit(settings, sessions)
    deps = build_deps(settings, sessions, security, callback_path, throttle)
    # Fail at start-up, naming the file and field, rather than on a customer's first hop.
    load_tariff(deps.settings.tariffs_path)
    load_rules(deps.settings.arrangement_rules_path)
    store = store or _store(settings, deps.identity)
    engine = Engine(FlowSet(load_menus(settings.menus_path)), store, DialogRegistry(deps),
                    audit=SqlAuditSink(sessions), observer=observer, security=security,
                    hop_key=_server_key(settings), clock=settings.clock,
                    limits=EngineLimits(session_ttl_seconds=settings.session_ttl_seconds,
                                        resume_window_seconds=settings.resume_window_seconds,
                                        ended_replay_seconds=settings.ended_replay_seconds,
                                        hop_deadline_seconds=settings.hop_deadline_seconds))
    return engine, {"store": store, "db": sessions, "deps": deps, "security": security}


def build_gateway_guard(settings: Settings) -> GatewayGuard:
    """The USSD gateway's credentials; an open callback is said loudly at start-up."""
    guard = GatewayGuard(token=settings.ussd_gateway_token,
                         allowed_networks=parse_networks(settings.ussd_allowed_networks),
                         trusted_proxies=parse_networks(settings.trusted_proxies))
    if not guard.token:
        log.warning("USSD_GATEWAY_TOKEN is not set: the USSD callback and its events endpoint accept any "
                    "caller (development only). Set it, and USSD_ALLOWED_NETWORKS, in production.")
    return guard


def build_answer_ledger(settings: Settings) -> AnswerLedger:
    """What the chat channels answered per provider message id: in Redis (every worker), else here."""
    if settings.redis_url:
        return RedisAnswerLedger(redis_from_url(settings.redis_url, socket_timeout=1.0))
    return MemoryAnswerLedger()



def build_durable_answers(settings: Settings, sessions: sessionmaker[Session]) -> SqlAnswers:
    """The durable record of what the chat channels answered (claims, replies, kept messages), read once the answer
    ledger forgot (Redis restarted empty)."""
    return SqlAnswers(sessions, reply_keys, settings.clock)


def build_code_budget(settings: Settings, deps: Deps, metrics: Metrics) -> CodeBudget:
    """The budget of sign-in codes for requesters not yet identified, counted by the dialogs' throttle (Redis:
    one budget for every process and door, the web's and the chat's), its refusals in ``metrics``."""
    return CodeBudget(deps.throttle, deps.security, per_minute=settings.sign_in_codes_per_minute,
                      per_hour=settings.sign_in_codes_per_hour,
                      refused=lambda channel, window: metrics.codes_refused.labels(channel, window).inc())


def sign_in_throttled(metrics: Metrics | None) -> Callable[[str, str], None]:
    """What counts the sign-in attempts refused by the limits per number or per requester (the web's, the chat's)."""
    if metrics is None:
        return lambda channel, attempt: None
    return lambda channel, attempt: metrics.sign_in_throttled.labels(channel, attempt).inc()


def build_web_adapter(settings: Settings, deps: Deps, guard: GatewayGuard, secret: str,
                      budget: CodeBudget | None = None, metrics: Metrics | None = None) -> WebAdapter:
    """The customers' web fallback: sign-in codes and visits in Redis (else this process), the code
    sent through the outbox, attempts counted by the dialogs' throttle and the codes' ``budget``, refused
    ones in ``metrics``."""
    store: SignInStore = MemorySignInStore()
    if settings.redis_url:
        store = RedisSignInStore(redis_from_url(settings.redis_url, socket_timeout=1.0))
    assert deps.outbox is not None
    sign_in = SignIn(store, deps.throttle, deps.outbox, deps.security,
                     SignInRules(code_ttl_seconds=settings.web_code_seconds), budget=budget,
                     throttled=sign_in_throttled(metrics))
    return WebAdapter(sign_in, secret, idle_seconds=settings.web_idle_seconds,
                      max_seconds=settings.web_max_seconds,
                      secure_cookie=settings.public_base_url.startswith("https://"),
                      default_region=settings.default_region, client_address=guard.source,
                      security=deps.security)



def build_inbox(settings: Settings, sessions: sessionmaker[Session]) -> SqlInbox | None:
    """Where the SMS and WhatsApp callbacks keep the messages the engine could not run now, for the worker: only
    with sessions in Redis, which the worker shares (the embedded store lives in the web process alone, and a
    worker running a message without its conversation would answer another question)."""
    if not settings.redis_url:
        return None
    # A short timeout: the mark only spares SQL queries, and an unreachable Redis reads as "ask SQL".
    mark = RedisInboxMark(redis.Redis.from_url(settings.redis_url, socket_timeout=0.25,
                                               socket_connect_timeout=0.25))
    return SqlInbox(sessions, OutboxSeal.from_setting(settings.outbox_seal_key, settings.secret_key),
                    clock=settings.clock, mark=mark)


def build_inbox_drain(settings: Settings) -> InboxDrain | None:
    """The worker's runner of the kept incoming messages (``channels/sms_inbox.py``), or ``None`` without Redis:
    SMS answered by an ``sms_reply``, WhatsApp (either provider) by a ``whatsapp_reply``."""
    if not settings.redis_url:
        return None
    engine, parts = build_engine(settings)
    inbox = build_inbox(settings, parts["db"])
    deps = parts["deps"]
    if inbox is None or deps.outbox is None:
        return None
    ledger = build_answer_ledger(settings)
    sms = SmsAdapter(None, settings.default_region, idle_seconds=settings.sms_session_idle_seconds, ledger=ledger)
    twilio = TwilioWhatsAppAdapter(default_region=settings.default_region, ledger=ledger,
                                   idle_seconds=settings.whatsapp_session_idle_seconds)
    meta = MetaWhatsAppAdapter(default_region=settings.default_region, ledger=ledger,
                               idle_seconds=settings.whatsapp_session_idle_seconds)
    for adapter in (sms, twilio):    # Meta's adapter keeps the same channel as Twilio's
        policy = adapter.session_policy
        engine.declare(adapter.capabilities, policy.idle_seconds, policy.key_ends_with_session)
    menus = engine.flows.menus
    path = settings.notifications_path or str(Path(settings.menus_path).with_name("notifications.yaml"))
    kinds = NotificationTemplates.load(path, menus.default_language, menus.brand).kinds
    sms_replies, whatsapp_replies = OutboxReplies(deps.outbox), OutboxReplies.whatsapp(deps.outbox)

    def stale(kind: str) -> timedelta:
        return timedelta(minutes=kinds[kind].stale_after_minutes or 30)

    routes = {
        ("sms", SMS_PROVIDER): KeptRoute(sms, sms_replies, sms_replies, stale(SMS_REPLY)),
        ("whatsapp", TWILIO_PROVIDER): KeptRoute(twilio, whatsapp_replies, whatsapp_replies, stale(WHATSAPP_REPLY)),
        ("whatsapp", META_PROVIDER): KeptRoute(meta, whatsapp_replies, whatsapp_replies, stale(WHATSAPP_REPLY)),
    }
    preferences = deps.preferences
    return InboxDrain(engine, routes, inbox, ledger, settings.clock,
                      preferences.language if preferences is not None else None)


def build_adapters(settings: Settings, guard: GatewayGuard, security: SecurityAudit,
                   metrics: Metrics, record_status: Callable[[DeliveryReport], bool] | None = None,
                   deps: Deps | None = None, secret: str = "",
                   sessions: sessionmaker[Session] | None = None) -> list[ChannelAdapter]:
    """Every conversation channel the product serves; the factory knows them only as adapters."""
    sms_sender = None
    if settings.at_api_key:
        sms_sender = AfricasTalkingSms(settings.at_username, settings.at_api_key, settings.at_api_url,
                                       settings.at_sender_id)
    else:
        log.warning("AT_API_KEY is not set: replies to SMS commands wait in the outbox until it is.")
    if not settings.twilio_auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: POST /whatsapp/twilio is closed (503) until it is.")
    meta_sender = None
    if settings.meta_app_secret and settings.meta_access_token:
        meta_sender = MetaWhatsApp(settings.graph_api_url, settings.meta_access_token,
                                   connect_timeout=settings.backend_connect_timeout,
                                   read_timeout=settings.backend_read_timeout)
    else:
        # Named without the word "secret": start-up speaks of one secret only, the payment callback's.
        log.warning("WhatsApp through Meta is not configured (README, WhatsApp): "
                    "POST /whatsapp/meta is closed (503).")
    ledger = build_answer_ledger(settings)
    answers = build_durable_answers(settings, sessions) if sessions is not None else None
    inbox = build_inbox(settings, sessions) if sessions is not None else None
    windows = SqlWhatsAppWindows(sessions, settings.clock) if sessions is not None else None
    # Where a WhatsApp webhook's own reply is recorded as sent (either provider): its statuses then act on it.
    replies = OutboxReplies.whatsapp(deps.outbox) if deps is not None and deps.outbox is not None else None
    adapters: list[ChannelAdapter] = [
        UssdAdapter(settings.default_region, guard, security, on_reject=metrics.rejected.labels("ussd").inc),
        SmsAdapter(sms_sender, settings.default_region, guard, security,
                   idle_seconds=settings.sms_session_idle_seconds, on_reject=metrics.rejected.labels("sms").inc,
                   outbox=OutboxReplies(deps.outbox) if deps is not None and deps.outbox is not None else None,
                   ledger=ledger, inbox=inbox, answers=answers),
        TwilioWhatsAppAdapter(settings.twilio_auth_token, settings.twilio_webhook_url or settings.public_base_url,
                              settings.default_region, security, ledger,
                              idle_seconds=settings.whatsapp_session_idle_seconds,
                              on_reject=metrics.rejected.labels("whatsapp").inc, inbox=inbox, windows=windows,
                              answers=answers, status_url=f"{settings.public_base_url}{twilio_status.PATH}",
                              replies=replies),
        MetaWhatsAppAdapter(settings.meta_app_secret, settings.meta_verify_token, meta_sender, record_status,
                            settings.default_region, security, ledger,
                            idle_seconds=settings.whatsapp_session_idle_seconds,
                            on_reject=metrics.rejected.labels("whatsapp").inc, inbox=inbox, windows=windows,
                            answers=answers, replies=replies),
    ]
    if deps is not None:
        adapters.append(build_web_adapter(settings, deps, guard, secret or secrets.token_hex(32),
                                          build_code_budget(settings, deps, metrics), metrics))
    return adapters


def build_dispatcher(settings: Settings, sessions: sessionmaker[Session]) -> Dispatcher:
    """The outbox's delivery: templates, the SMS provider (when configured), the queue."""
    menus = load_menus(settings.menus_path).menus
    path = settings.notifications_path or str(Path(settings.menus_path).with_name("notifications.yaml"))
    templates = NotificationTemplates.load(path, menus.default_language, menus.brand)
    problems = templates.check(menus.languages) + validity_problems(templates, settings)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    senders: dict[str, SmsSender] = {}
    providers: dict[str, str] = {}
    if settings.at_api_key:
        senders["sms"] = AfricasTalkingSms(settings.at_username, settings.at_api_key, settings.at_api_url,
                                           settings.at_sender_id)
    else:
        log.warning("AT_API_KEY is not set: SMS notifications stay queued in the outbox until it is.")
    replies = build_whatsapp_senders(settings)
    whatsapp_number = ""    # the business number notifications go from: the window read is the customer's with it
    if "meta" in replies and settings.meta_phone_number_id:
        # Meta first when both are configured (one sender, one rate); both send approved templates.
        senders["whatsapp"] = replies["meta"]
        providers["whatsapp"], whatsapp_number = "meta", settings.meta_phone_number_id
    elif "twilio" in replies and settings.twilio_whatsapp_from:
        senders["whatsapp"] = replies["twilio"]
        providers["whatsapp"], whatsapp_number = "twilio", settings.twilio_whatsapp_from
        for problem in content_sid_problems(templates, menus.languages, settings.twilio_content_sids):
            log.warning("%s", problem)     # the operator's to fix; the message still goes (text, or SMS)
    if settings.smtp_url:
        senders["email"] = UnsubscribableEmail(SmtpEmail(settings.smtp_url, settings.email_from),
                                               SqlEmailStops(sessions), build_unsubscribe_links(settings))
    else:
        log.warning("SMTP_URL is not set: customers who chose e-mail get SMS, and e-mail codes wait in the outbox.")
    rates = parse_rates(settings.send_rates)
    consent = SqlConsent(sessions)
    client_config = ClientConfig(base_url=settings.backoffice_url, api_key=settings.backoffice_api_key,
                                 connect_timeout=settings.backend_connect_timeout,
                                 read_timeout=settings.backend_read_timeout, retries=settings.backend_retries)
    return Dispatcher(SqlDeliveryQueue(sessions, clock=settings.clock), templates, senders, labels=menus.labels,
                      stops=consent, quiet=QuietHours.parse(settings.quiet_hours, settings.quiet_hours_tz),
                      pace=build_pace(settings), clock=settings.clock, batch=max(1, min(50, int(max(rates.values(), default=50)))),
                      opt_ins=consent, contacts=SqlContacts(sessions),
                      seal=OutboxSeal.from_setting(settings.outbox_seal_key, settings.secret_key), outages=IncidentClient(client_config),
                      power_back=consent, providers=providers,
                      keep_secrets=timedelta(minutes=settings.outbox_keep_sent_secrets_minutes),
                      keep_plain=timedelta(hours=settings.outbox_keep_plain_replies_hours),
                      windows=SqlWhatsAppWindows(sessions, settings.clock),
                      window=timedelta(minutes=settings.whatsapp_window_minutes), window_closed=WINDOW_CLOSED,
                      reply_senders=replies, whatsapp_number=whatsapp_number)


def build_whatsapp_senders(settings: Settings) -> dict[str, SmsSender]:
    """Each WhatsApp provider able to send, by name: Meta with its access token, Twilio with its account SID and
    auth token. The worker answers a WhatsApp message through the provider it came through, from our number it was
    written to (else the provider's configured one: ``META_PHONE_NUMBER_ID``, ``TWILIO_WHATSAPP_FROM``); the
    notifications go through one of them (``build_dispatcher``)."""
    senders: dict[str, SmsSender] = {}
    if settings.meta_access_token:
        senders["meta"] = MetaWhatsAppLetters(MetaWhatsAppNotifier(
            MetaWhatsApp(settings.graph_api_url, settings.meta_access_token,
                         connect_timeout=settings.backend_connect_timeout,
                         read_timeout=settings.backend_read_timeout), settings.meta_phone_number_id))
    if settings.twilio_account_sid and settings.twilio_auth_token:
        senders["twilio"] = TwilioWhatsAppLetters(TwilioWhatsApp(
            settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_whatsapp_from,
            settings.twilio_api_url, status_callback=f"{settings.public_base_url}{twilio_status.PATH}"),
            settings.twilio_content_sids)
    return senders


def build_unsubscribe_links(settings: Settings) -> UnsubscribeLinks | None:
    """Our e-mails' one-click unsubscribe links, signed with a key derived from ``SECRET_KEY``; without
    it a link minted by the worker could not be checked by the web server: none is put in e-mails."""
    if not settings.secret_key:
        log.warning("SECRET_KEY is not set: e-mails go without an unsubscribe link. Set SECRET_KEY.")
        return None
    return UnsubscribeLinks(derive_key(settings.secret_key), settings.public_base_url)


def build_pace(settings: Settings) -> Pace | None:
    """The providers' send rates: shared through Redis by every worker, or kept in this process."""
    rates = parse_rates(settings.send_rates)
    if not rates:
        return None
    if settings.redis_url:
        return RedisPace(redis_from_url(settings.redis_url, socket_timeout=2.0), rates)
    return MemoryPace(rates)


def build_notice_relay(settings: Settings, sessions: sessionmaker[Session]) -> NoticeRelay:
    """The worker's reader of the back office's notice feed (zone broadcasts, customer events)."""
    client_config = ClientConfig(base_url=settings.backoffice_url, api_key=settings.backoffice_api_key,
                                 connect_timeout=settings.backend_connect_timeout,
                                 read_timeout=settings.backend_read_timeout, retries=settings.backend_retries)
    return NoticeRelay(sessions, NoticeFeedClient(client_config), load_menus(settings.menus_path).menus.default_language,
                       clock=settings.clock)


def settler(deps: Deps) -> Callable[[CallbackEvent], Applied]:
    """The payment callback channel's ``apply``: the dialogs' settlement of a provider result."""

    def apply(event: CallbackEvent) -> Applied:
        settled = settle_provider_result(deps, ProviderResult(
            event_id=event.event_id, payment_id=event.payment_id, status=event.status, amount=event.amount,
            currency=event.currency, account_number=event.account_number, msisdn=event.msisdn,
            reference=event.reference, token=event.token, failure_reason=event.failure_reason,
            idempotency_key=event.idempotency_key))
        payment = settled.payment
        return Applied(payment.status if payment else None, settled.changed, settled.mismatch, settled.kept)

    return apply


def _backoffice_ready(settings: Settings) -> bool:
    try:
        return requests.get(f"{settings.backoffice_url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False


def create_app(settings: Settings | None = None, store: SessionStore | None = None,
               throttle: Throttle | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, secrets=[settings.ussd_gateway_token, settings.payment_callback_secret,
                                                   settings.backoffice_api_key or "", settings.twilio_auth_token,
                                                   settings.meta_app_secret, settings.meta_access_token,
                                                   settings.meta_verify_token, settings.outbox_seal_key])
    metrics = Metrics()
    engine, parts = build_engine(settings, store, observer=metrics, throttle=throttle)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # Signs the web visitors' cookies; without SECRET_KEY a random one (visits then end on restart).
    app.secret_key = settings.secret_key or secrets.token_hex(32)
    app.extensions["engine"] = engine
    app.extensions["parts"] = parts
    app.extensions["metrics"] = metrics

    gateway_guard = build_gateway_guard(settings)
    delivery_queue = SqlDeliveryQueue(parts["db"], clock=settings.clock)

    def reports_of(provider: str) -> Callable[[DeliveryReport], bool]:
        def record(report: DeliveryReport) -> bool:
            return delivery_queue.record_report(provider=provider, message_id=report.message_id,
                                                msisdn=report.msisdn, status=report.status,
                                                failure_reason=report.failure_reason)
        return record

    adapters = build_adapters(settings, gateway_guard, parts["security"], metrics, meta_status_recorder(delivery_queue),
                              parts["deps"], str(app.secret_key), parts["db"])
    for adapter in adapters:
        policy = adapter.session_policy
        engine.declare(adapter.capabilities, policy.idle_seconds, policy.key_ends_with_session)
        app.register_blueprint(adapter.blueprint(engine))

    links = build_unsubscribe_links(settings) if settings.secret_key else None
    if links is not None and any(isinstance(a, WebAdapter) for a in adapters):
        brand = engine.flows.menus.brand
        app.register_blueprint(unsubscribe_blueprint(
            links, SqlEmailStops(parts["db"]), parts["deps"].throttle, parts["security"], brand=brand.name,
            help_line=brand.help_line, client_address=gateway_guard.source))

    def adapter_for(path: str) -> ChannelAdapter | None:
        return next((a for a in adapters if a.owns(path)), None)

    # Providers' callbacks that are not channels: each has its own error answer, as an adapter does.
    callback_errors: dict[str, Callable[[int, Mapping[str, str] | None], Response]] = {
        sms_delivery.PATH: sms_delivery.error_response, twilio_status.PATH: twilio_status.error_response}
    mount_agents(app, settings, parts, adapters)
    app.register_blueprint(payment_callback_blueprint(settler(parts["deps"]), settings.payment_callback_secret,
                                                      parts["security"]))
    app.register_blueprint(sms_delivery_blueprint(reports_of("africastalking"), gateway_guard,
                                                  settings.default_region, parts["security"]))
    app.register_blueprint(twilio_status_blueprint(twilio_status_recorder(delivery_queue), settings.twilio_auth_token,
                                                   settings.public_base_url))
    app.register_blueprint(ops_blueprint(metrics, {
        "session_store": parts["store"].ping,
        "backoffice": lambda: _backoffice_ready(settings),
    }, expose_metrics=settings.metrics_port is None))

    # The gateway's plain hops are answered in front of Flask (same checks, same answer, less CPU);
    # anything else reaches the blueprint and the error handlers below.
    ussd = next(a for a in adapters if isinstance(a, UssdAdapter))
    app.wsgi_app = UssdFastPath(app.wsgi_app, engine, ussd, gateway_guard,  # type: ignore[method-assign]
                                MAX_BODY_BYTES, metrics.request_seconds.labels(ussd.channel).observe)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        adapter = adapter_for(request.path)
        if adapter is not None and not request.path.endswith("/events"):
            elapsed = time.perf_counter() - g.get("started", time.perf_counter())
            metrics.request_seconds.labels(adapter.channel).observe(elapsed)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if agents_page(request.path):
            return agents_error(exc)
        adapter = adapter_for(request.path)
        if adapter is not None:
            # The status stays (405 keeps its Allow header); the body is the channel's own error answer.
            headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
            return adapter.error_response(exc.code or 400, headers)
        callback_error = callback_errors.get(request.path)
        if callback_error is not None:
            return callback_error(exc.code or 400, {k: v for k, v in exc.get_headers()
                                                    if k.lower() != "content-type"})
        response = jsonify(error=(exc.name or "error").lower().replace(" ", "_"), message=exc.description)
        response.status_code = exc.code or 400
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.path)
        if agents_page(request.path):
            return agents_error(InternalServerError("Something went wrong; it has been logged. Please try again."))
        adapter = adapter_for(request.path)
        if adapter is not None:
            return adapter.failure_response()
        callback_error = callback_errors.get(request.path)
        if callback_error is not None:
            return callback_error(500, None)
        response = jsonify(error="internal", message="An internal error occurred; it has been logged.")
        response.status_code = 500
        return response

    return app
