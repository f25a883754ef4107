"""whatsapp_windows: when each customer last wrote to each of our WhatsApp senders

WhatsApp delivers free text only within 24 hours of the customer's last message to that business number
(the customer-service window); the worker sends a notification that has an approved template as free text
inside the window (free of Meta's per-template charge), as the template outside it. One row per number and
provider (Meta, Twilio), moved forward by each incoming message.

Revision ID: v1_wawindow
Revises: v1_race
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_wawindow'
down_revision = 'v1_race'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'whatsapp_windows',
        sa.Column('msisdn', sa.String(length=20), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('msisdn', 'provider'),
    )


def downgrade() -> None:
    op.drop_table('whatsapp_windows')
