"""outbox: an index of the sent messages still holding a sealed code or token (PostgreSQL)

A code or token sent on WhatsApp stays sealed until its delivery is final, at most an hour
(``OUTBOX_KEEP_SENT_SECRETS_MINUTES``): each worker looks for those past their bound once a minute. Among
90 days of sent messages they are a handful; a partial index (``status = 'sent' AND sealed IS NOT NULL``)
lets PostgreSQL read them alone. SQLite (the embedded default, one worker, a small outbox) goes without:
its planner takes the status index for that query whatever partial index exists.

Revision ID: v1_templates
Revises: u1_alerts
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_templates'
down_revision = 'u1_alerts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.create_index('ix_outbox_events_kept_secrets', 'outbox_events', ['sent_at'],
                        postgresql_where=sa.text("status = 'sent' AND sealed IS NOT NULL"))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_outbox_events_kept_secrets', table_name='outbox_events')
