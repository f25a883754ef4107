"""security events: the durable audit of PIN, linking, caller, callback and gateway events

Revision ID: h1
Revises: f1
"""
import sqlalchemy as sa
from alembic import op

revision = 'h1'
down_revision = 'f1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'security_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('subject_id', sa.String(length=64), nullable=True),
        sa.Column('account_number', sa.String(length=32), nullable=True),
        sa.Column('detail', sa.String(length=200), nullable=False),
        sa.Column('extra', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_security_events_occurred_at', 'security_events', ['occurred_at'])
    op.create_index('ix_security_events_kind', 'security_events', ['kind'])
    op.create_index('ix_security_events_subject_id', 'security_events', ['subject_id'])
    op.create_index('ix_security_events_account_number', 'security_events', ['account_number'])


def downgrade() -> None:
    op.drop_table('security_events')
