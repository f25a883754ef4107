"""payment_intents.billing_post: an agent's "paid" owed to billing until billing records it

A payment an agent settles by hand as paid is posted to billing through the back office's API; while billing
is unavailable it stays ``due`` and the worker posts it again, so the customer's balance is never left
showing the amount as owed. No number, no text.

Revision ID: v1_settle2
Revises: v1_smsonce
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_settle2'
down_revision = 'v1_smsonce'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_intents') as batch:
        batch.add_column(sa.Column('billing_post', sa.String(length=12), nullable=True))
        batch.create_index('ix_payment_intents_billing_post', ['billing_post'])


def downgrade() -> None:
    with op.batch_alter_table('payment_intents') as batch:
        batch.drop_index('ix_payment_intents_billing_post')
        batch.drop_column('billing_post')
