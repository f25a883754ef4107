"""sms_inbox holds the kept messages of every messaging channel: its channel and provider

Revision ID: v1_wainbox
Revises: v1_inbox
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_wainbox'
down_revision = 'v1_inbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The rows kept so far are SMS through Africa's Talking.
    with op.batch_alter_table('sms_inbox') as batch:
        batch.add_column(sa.Column('channel', sa.String(length=16), nullable=False, server_default='sms'))
        batch.add_column(sa.Column('provider', sa.String(length=20), nullable=False,
                                   server_default='africastalking'))


def downgrade() -> None:
    with op.batch_alter_table('sms_inbox') as batch:
        batch.drop_column('provider')
        batch.drop_column('channel')
