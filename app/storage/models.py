"""Tables of the product's own database (migrated by Alembic, see ``migrations/``)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AccountLinkRow", "Base", "PreferenceRow", "SessionAuditRow"]


class Base(DeclarativeBase):
    pass


class AccountLinkRow(Base):
    __tablename__ = "account_links"
    __table_args__ = (UniqueConstraint("msisdn", "account_number", name="uq_account_links_msisdn_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(20), index=True)
    account_number: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(20))
    undo_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)  # registered holder's undo code
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PreferenceRow(Base):
    __tablename__ = "preferences"

    msisdn: Mapped[str] = mapped_column(String(20), primary_key=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    # Where notifications go (app/storage/contacts.py): sms | whatsapp | email; None = SMS.
    notify_channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # An e-mail address only once the customer typed back the code sent to it (no one registers
    # someone else's address); until then it waits in ``email_pending`` with the code's salted hash.
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    email_pending: Mapped[str | None] = mapped_column(String(254), nullable=True)
    email_code_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email_code_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    email_code_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SessionAuditRow(Base):
    """One finished conversation: what the engine saw, completed by the gateway's report."""

    __tablename__ = "session_audit"

    session_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    user_masked: Mapped[str] = mapped_column(String(32))
    flow: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    nodes: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hops: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gateway_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    gateway_duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gateway_error: Mapped[str | None] = mapped_column(String(255), nullable=True)


class PinCredentialRow(Base):
    """A customer's PIN: scrypt hash with a per-user salt, wrong-try counter and lock."""

    __tablename__ = "pin_credentials"

    msisdn: Mapped[str] = mapped_column(String(20), primary_key=True)
    pin_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pending_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)  # chosen, not yet confirmed
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lockouts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # in a row; sets the next length
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())


class SubscriptionRow(Base):
    """Consent to an alert topic (outage in my zone, bill issued, payment received) on a channel."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("msisdn", "topic", "scope", name="uq_subscriptions_msisdn_topic_scope"),
                      Index("ix_subscriptions_topic_scope", "topic", "scope"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(20), index=True)
    topic: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(64), default="")   # zone or account number, "" for all
    channel: Mapped[str] = mapped_column(String(20), default="sms")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    # The conversation's language when the customer subscribed: the alert is written in it.
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)


class PaymentIntentRow(Base):
    """A payment the customer confirmed: kept before the provider is called, so none is lost."""

    __tablename__ = "payment_intents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    msisdn: Mapped[str] = mapped_column(String(20), index=True)
    account_number: Mapped[str] = mapped_column(String(32), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(8), default="fr", server_default="fr")  # of the receipt
    amount: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(8), default="XOF")
    status: Mapped[str] = mapped_column(String(20), default="created")  # LocalPayment.status (dialogs/stores.py)
    provider_payment_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
    # The mobile-money operator the customer chose (configuration code, e.g. "orange_money").
    wallet: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Asking the provider for the status of a payment that never heard back (worker).
    pending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # "due" while an agent's "paid" is not yet recorded by billing (the worker retries), then "posted" or
    # "refused"; None for a payment the provider settled (it reaches billing on the provider's side).
    billing_post: Mapped[str | None] = mapped_column(String(12), nullable=True, index=True)
    # What billing said refusing it for good (code and message, long numbers masked); "handled" once a supervisor
    # closed it with a reason, "due" again when one posts it again (migration v1_money3).
    billing_said: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # When the provider last answered a question by our key (even "no such payment"): a ``not_started`` payment
    # it never answered about is flagged at the end of the questions (``flag_unanswered``).
    provider_answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A prepaid purchase settled by hand as paid owes the customer a token the vending system must issue
    # (``dialogs/vending.py``): "due" until it has (the worker asks again after ``vend_next_at``, waits doubling
    # with ``vend_tries``), "refused" when it said no for good (what it said in ``vend_said``, for a supervisor),
    # "vended" once the token is in ``token``; None for every other payment (migration v1_vend1).
    vend: Mapped[str | None] = mapped_column(String(12), nullable=True, index=True)
    vend_said: Mapped[str | None] = mapped_column(String(200), nullable=True)
    vend_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    vend_next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MismatchedCallbackRow(Base):
    """A provider result (callback or status answer) that did not match our ledger: kept for an agent."""

    __tablename__ = "mismatched_callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(80), index=True)
    provider_payment_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(20))           # callback | status
    reasons: Mapped[str] = mapped_column(String(200))         # "amount,account_number"
    received: Mapped[str] = mapped_column(Text)               # the fields received, JSON
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved (by an agent)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProcessedCallbackRow(Base):
    """Provider callback events already applied: a replayed event changes nothing."""

    __tablename__ = "processed_callbacks"

    event_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


DEDUPE_KEY_CHARS = 120


def stored_dedupe_key(key: str) -> str:
    """``key`` as the outbox column holds it: as it is when it fits, else its head and a digest of all of it.

    A key carries a provider's session id (USSD: up to 128 characters) or a conversation id: cut to the
    column, two events would share one key (the second lost); too long, PostgreSQL refuses the row."""
    if len(key) <= DEDUPE_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[:DEDUPE_KEY_CHARS - 33]}#{digest}"


class OutboxEventRow(Base):
    """Something to tell a customer (payment receipt, ticket opened, power back ...), kept until sent."""

    __tablename__ = "outbox_events"
    # The sent messages still holding a sealed code (kept for a late WhatsApp failure): the worker's
    # look-up of those past their bound reads them alone (migration v1_templates; PostgreSQL only).
    __table_args__ = (Index("ix_outbox_events_kept_secrets", "sent_at",
                            postgresql_where=text("status = 'sent' AND sealed IS NOT NULL")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(DEDUPE_KEY_CHARS), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    msisdn: Mapped[str] = mapped_column(String(20), index=True)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    payload: Mapped[str] = mapped_column(Text)        # JSON, without secrets (their names under "sealed")
    # The payload's secret fields (one-time codes, prepaid tokens) as a Fernet token under OUTBOX_SEAL_KEY, erased once the
    # message is sent (on WhatsApp: once its delivery is final, an hour at most) or given up (app/storage/outbox_seal.py).
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Delivery (app/notify.py): a worker holds a claimed row until ``claimed_until``; the provider's id
    # and its delivery reports follow the message once sent.
    channel: Mapped[str] = mapped_column(String(16), default="sms", server_default="sms")
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    delivery_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(120), nullable=True)


class DeliveryReportRow(Base):
    """A provider's word on a message it took (delivered, failed ...), kept even when no outbox row
    is known by its id yet: a worker that crashed before recording the id finds it here."""

    __tablename__ = "delivery_reports"
    __table_args__ = (UniqueConstraint("provider", "provider_message_id", "status", name="uq_delivery_reports_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(24))
    provider_message_id: Mapped[str] = mapped_column(String(64))
    msisdn: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(24))
    failure_reason: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # A failure SMS does not share (WhatsApp outside the 24-hour window): the reason the row goes again by SMS,
    # kept with the report so that a report arriving before the send is recorded still sends it.
    sms_again: Mapped[str | None] = mapped_column(String(120), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The outbox row this report sent again (outside the window): that row forgets the message id, so this
    # says the report is taken and no stale row adopts it as its own.
    adopted_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class OutboxPartRow(Base):
    """The provider's id of one part of an outbox message sent in several (a long WhatsApp reply): a status
    report about any part finds its row (``outbox_events.provider_message_id`` is the first part's)."""

    __tablename__ = "outbox_parts"
    __table_args__ = (UniqueConstraint("outbox_id", "part", name="uq_outbox_parts_part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(Integer)
    part: Mapped[int] = mapped_column(Integer)       # 0 for the first
    provider_message_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WhatsAppWindowRow(Base):
    """When a customer last wrote to one of our WhatsApp business numbers (WhatsApp's 24-hour customer-service
    window is between the customer and that number, not the provider: migration v1_wa3)."""

    __tablename__ = "whatsapp_windows"

    msisdn: Mapped[str] = mapped_column(String(20), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)    # meta | twilio
    # Twilio: our sender in E.164; Meta: our phone number id. '' (rows written before v1_wa3): the provider's
    # configured number, the one notifications go from.
    business_number: Mapped[str] = mapped_column(String(64), primary_key=True, default="", server_default="")
    last_inbound_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PendingTicketRow(Base):
    """A complaint or outage report the incident system could not take yet: sent again later."""

    __tablename__ = "pending_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_reference: Mapped[str] = mapped_column(String(80), unique=True)
    msisdn: Mapped[str] = mapped_column(String(20), index=True)
    account_number: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|sent|refused
    refusal: Mapped[str | None] = mapped_column(String(255), nullable=True)
    ticket_reference: Mapped[str | None] = mapped_column(String(20), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    bill_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class SecurityEventRow(Base):
    """One security event (PIN, linking, caller, callback, gateway): who is a pseudonym, never a number.

    ``subject_id`` is HMAC-SHA256(SECRET_KEY, number): an agent finds a customer's events by computing it
    from the number they are given, and a leaked table names no one.
    """

    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    account_number: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    detail: Mapped[str] = mapped_column(String(200), default="")
    extra: Mapped[str] = mapped_column(Text, default="{}")   # JSON of short, non-secret strings


class ConsentChangeRow(Base):
    """Every change of a customer's consent (GDPR): opt-in or opt-out of a topic, STOP, START,
    with when, on which channel and through what (USSD menu, SMS keyword, agent ...)."""

    __tablename__ = "consent_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(20), index=True)
    action: Mapped[str] = mapped_column(String(12))        # opt_in | opt_out | stop | start | channel | email | email_stop
    topic: Mapped[str] = mapped_column(String(40), default="")   # "" for STOP/START (every topic)
    scope: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(20))       # where the customer said it ("" when not known)
    source: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # An opt-in: where its alerts go (sms, whatsapp, email), apart from where it was said.
    delivery: Mapped[str | None] = mapped_column(String(20), nullable=True)


class NotificationStopRow(Base):
    """A customer who sent STOP: no message but transactional ones (receipts, tokens) until START."""

    __tablename__ = "notification_stops"

    msisdn: Mapped[str] = mapped_column(String(20), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(40))
    stopped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EmailStopRow(Base):
    """An address that asked, through the link of one of our e-mails, to receive no more e-mail about
    ``topic`` (``all``: none at all); the message then goes by SMS. Lifted when the address is confirmed again."""

    __tablename__ = "email_stops"

    address: Mapped[str] = mapped_column(String(254), primary_key=True)
    topic: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SmsInboxRow(Base):
    """An incoming message (SMS, WhatsApp) the engine could not run when it arrived (the session store down,
    the conversation busy), kept for the worker (``channels/sms_inbox.py``): once per provider message id, its
    text sealed (``sealed``: what the customer typed may be a PIN) and erased once it is answered."""

    __tablename__ = "sms_inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), unique=True)   # the provider's id
    msisdn: Mapped[str] = mapped_column(String(20), index=True)         # who wrote (E.164), where the reply goes
    channel: Mapped[str] = mapped_column(String(16), default="sms", server_default="sms")   # sms | whatsapp
    # Who carried it (africastalking, twilio, meta): its conversation is keyed as that provider's adapter keys it.
    provider: Mapped[str] = mapped_column(String(20), default="africastalking", server_default="africastalking")
    short_code: Mapped[str] = mapped_column(String(64), default="")   # 64: Meta's phone number ids (v1_wa3)
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    # pending | replied (its reply queued, the answered mark not written yet: still holding the sender's newer
    # messages) | answered (run, its reply queued) | late (answered with an apology) | answered_before
    # (the provider posted it again and that was answered at once)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MessageClaimRow(Base):
    """An incoming chat message (SMS, WhatsApp, the chatbot's) claimed by the delivery that runs it, before it runs
    (``channels.answer_ledger.claim_message``): once per provider message id, so a copy delivered while it runs, or
    after Redis restarted empty and before its answer is recorded, finds it taken and runs nothing. Once its answer
    has gone the same row says so (``answered_at``, v1_answered1): one row per message is both the claim and the
    durable record of its answer. A claim whose run failed (the provider asked to deliver it again) is released; one
    left ``stale_seconds`` unanswered (a process that died, a reply owed) may be taken again. Holds no text and no
    number: only which message, on which channel, since when, answered when."""

    __tablename__ = "message_claims"

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)   # the provider's id
    channel: Mapped[str] = mapped_column(String(16))                          # sms | whatsapp
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FeedCursorRow(Base):
    """How far the worker has read a back-office event feed (zone outages, bills ...)."""

    __tablename__ = "feed_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())
