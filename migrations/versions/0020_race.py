"""delivery_reports.sms_again: a WhatsApp "outside the 24-hour window" report kept with its decision

A provider's status can arrive before the worker records the message as sent (the send API answered, the
worker's commit not done yet, the webhook served by another process). The report is kept until then; its
"send it again by SMS" decision (Meta 131047, Twilio 63016) is kept with it, the reason agents read, so that
the send, once recorded, goes again by SMS instead of ending failed. Reports kept before this revision have
none (they were applied as plain failures).

Revision ID: v1_race
Revises: v1_wainbox
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_race'
down_revision = 'v1_wainbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery_reports') as batch:
        batch.add_column(sa.Column('sms_again', sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery_reports') as batch:
        batch.drop_column('sms_again')
