"""outbox delivery: claims, provider ids, delivery status; delivery reports

Revision ID: i1
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = 'i1'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_events') as batch:
        batch.add_column(sa.Column('channel', sa.String(length=16), server_default='sms', nullable=False))
        batch.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('provider_message_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('delivery_status', sa.String(length=24), nullable=True))
        batch.add_column(sa.Column('last_error', sa.String(length=120), nullable=True))
        batch.create_index('ix_outbox_events_provider_message_id', ['provider_message_id'])
    op.create_table(
        'delivery_reports',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('provider', sa.String(length=24), nullable=False),
        sa.Column('provider_message_id', sa.String(length=64), nullable=False),
        sa.Column('msisdn', sa.String(length=20), nullable=False),
        sa.Column('status', sa.String(length=24), nullable=False),
        sa.Column('failure_reason', sa.String(length=80), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint('provider', 'provider_message_id', 'status', name='uq_delivery_reports_once'),
    )
    op.create_index('ix_delivery_reports_msisdn', 'delivery_reports', ['msisdn'])


def downgrade() -> None:
    op.drop_index('ix_delivery_reports_msisdn', table_name='delivery_reports')
    op.drop_table('delivery_reports')
    with op.batch_alter_table('outbox_events') as batch:
        batch.drop_index('ix_outbox_events_provider_message_id')
        for column in ('last_error', 'delivery_status', 'provider_message_id', 'sent_at', 'claimed_until',
                       'channel'):
            batch.drop_column(column)
