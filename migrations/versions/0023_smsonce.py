"""message_claims: each incoming chat message claimed durably before it runs, so it is answered once

An SMS or WhatsApp message is claimed (a row under its provider message id, the primary key) by the delivery
that runs it, before the engine runs: a copy the provider delivers meanwhile, or after Redis restarted empty and
before the answer is recorded, finds the claim and runs nothing. No text, no number.

Revision ID: v1_smsonce
Revises: v1_wa3
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_smsonce'
down_revision = 'v1_wa3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'message_claims',
        sa.Column('message_id', sa.String(length=128), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('message_id'),
    )
    op.create_index('ix_message_claims_claimed_at', 'message_claims', ['claimed_at'])


def downgrade() -> None:
    op.drop_index('ix_message_claims_claimed_at', table_name='message_claims')
    op.drop_table('message_claims')
