"""WhatsApp windows per business number, long phone number ids kept, every part's provider id

whatsapp_windows.business_number: WhatsApp's 24-hour window is between the customer and one business number,
not a provider (an account at Twilio or Meta may hold several numbers). The key becomes (number, provider,
business number: Twilio's sender in E.164, Meta's phone number id). The rows written before knew no number:
they are kept with '' , read as the provider's configured number (TWILIO_WHATSAPP_FROM, META_PHONE_NUMBER_ID),
the one every notification is sent from.

sms_inbox.short_code: 64 characters (was 20): Meta's phone number ids are digits, and some are longer than 20;
such a kept message lost the number it was written to, and its late reply went from the configured one.

outbox_parts: the provider id of each part of a message sent in several (a long WhatsApp reply), so that a
status report about part 2 or later finds its outbox row (the row keeps the first part's id only).

Revision ID: v1_wa3
Revises: v1_wawindow
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_wa3'
down_revision = 'v1_wawindow'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A primary key changes: a new table, the rows copied (SQLite cannot alter a key in place).
    op.create_table(
        'whatsapp_windows_wa3',
        sa.Column('msisdn', sa.String(length=20), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('business_number', sa.String(length=64), nullable=False, server_default=''),
        sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('msisdn', 'provider', 'business_number'),
    )
    op.execute("INSERT INTO whatsapp_windows_wa3 (msisdn, provider, business_number, last_inbound_at) "
               "SELECT msisdn, provider, '', last_inbound_at FROM whatsapp_windows")
    op.drop_table('whatsapp_windows')
    op.rename_table('whatsapp_windows_wa3', 'whatsapp_windows')
    with op.batch_alter_table('sms_inbox') as batch:
        batch.alter_column('short_code', type_=sa.String(length=64), existing_type=sa.String(length=20),
                           existing_nullable=False)
    op.create_table(
        'outbox_parts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=False),
        sa.Column('part', sa.Integer(), nullable=False),
        sa.Column('provider_message_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('outbox_id', 'part', name='uq_outbox_parts_part'),
    )
    op.create_index('ix_outbox_parts_provider_message_id', 'outbox_parts', ['provider_message_id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_parts_provider_message_id', table_name='outbox_parts')
    op.drop_table('outbox_parts')
    op.execute("UPDATE sms_inbox SET short_code = '' WHERE LENGTH(short_code) > 20")
    with op.batch_alter_table('sms_inbox') as batch:
        batch.alter_column('short_code', type_=sa.String(length=20), existing_type=sa.String(length=64),
                           existing_nullable=False)
    op.create_table(
        'whatsapp_windows_old',
        sa.Column('msisdn', sa.String(length=20), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('msisdn', 'provider'),
    )
    # The latest message to any of the provider's numbers, as the previous release kept it.
    op.execute("INSERT INTO whatsapp_windows_old (msisdn, provider, last_inbound_at) "
               "SELECT msisdn, provider, MAX(last_inbound_at) FROM whatsapp_windows GROUP BY msisdn, provider")
    op.drop_table('whatsapp_windows')
    op.rename_table('whatsapp_windows_old', 'whatsapp_windows')
