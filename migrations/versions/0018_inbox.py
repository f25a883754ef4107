"""sms_inbox: incoming SMS kept for the worker when the engine could not run them at once

Revision ID: v1_inbox
Revises: v1_templates
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_inbox'
down_revision = 'v1_templates'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sms_inbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=128), nullable=False),
        sa.Column('msisdn', sa.String(length=20), nullable=False),
        sa.Column('short_code', sa.String(length=20), nullable=False),
        sa.Column('sealed', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('message_id'),
    )
    op.create_index('ix_sms_inbox_msisdn', 'sms_inbox', ['msisdn'])
    op.create_index('ix_sms_inbox_status', 'sms_inbox', ['status'])


def downgrade() -> None:
    op.drop_index('ix_sms_inbox_status', table_name='sms_inbox')
    op.drop_index('ix_sms_inbox_msisdn', table_name='sms_inbox')
    op.drop_table('sms_inbox')
