"""whatsapp_windows: when each customer last wrote to each of our WhatsApp senders

WhatsApp delivers free text only within 24 hours of the customer's last message to that business number
(the customer-service window); the worker sends a notification that has an approved template as free text
inside the window (free of Meta's per-template charge), as the template outside it. One row per number and
provider (Meta, Twilio), moved forward by each incoming message.

delivery_reports.adopted_by: the outbox row a WhatsApp "outside the window" report sent again (by SMS, or as
its template). That row forgets the WhatsApp message id, so without this a stale row of the same number (its
worker died) could adopt the same report in crash recovery and go again too.

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
    with op.batch_alter_table('delivery_reports') as batch:
        batch.add_column(sa.Column('adopted_by', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery_reports') as batch:
        batch.drop_column('adopted_by')
    op.drop_table('whatsapp_windows')
