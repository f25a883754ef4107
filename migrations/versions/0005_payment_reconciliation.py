"""payments: chosen wallet, status polling of payments that never heard back, mismatched callbacks kept

Revision ID: g1
Revises: i1
Create Date: 2026-11-26 12:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'g1'
down_revision = 'i1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('payment_intents', sa.Column('wallet', sa.String(length=40), nullable=True))
    op.add_column('payment_intents', sa.Column('pending_since', sa.DateTime(timezone=True), nullable=True))
    op.add_column('payment_intents', sa.Column('status_checks', sa.Integer(), server_default='0', nullable=False))
    op.add_column('payment_intents', sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'mismatched_callbacks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.String(length=80), nullable=False),
        sa.Column('provider_payment_id', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('reasons', sa.String(length=200), nullable=False),
        sa.Column('received', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
                  nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_mismatched_callbacks_event_id'), 'mismatched_callbacks', ['event_id'], unique=False)
    op.create_index(op.f('ix_mismatched_callbacks_provider_payment_id'), 'mismatched_callbacks',
                    ['provider_payment_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_mismatched_callbacks_provider_payment_id'), table_name='mismatched_callbacks')
    op.drop_index(op.f('ix_mismatched_callbacks_event_id'), table_name='mismatched_callbacks')
    op.drop_table('mismatched_callbacks')
    op.drop_column('payment_intents', 'checked_at')
    op.drop_column('payment_intents', 'status_checks')
    op.drop_column('payment_intents', 'pending_since')
    op.drop_column('payment_intents', 'wallet')
