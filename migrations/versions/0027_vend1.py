"""payment_intents.vend, vend_said, vend_tries, vend_next_at: a prepaid purchase settled by hand owes a token

A supervisor's "paid" on a prepaid purchase asks the vending system (the back office's ``POST /meters/{id}/vends``)
for the customer's token. Until it has it the payment owes one: ``vend`` is ``due`` (the worker asks again, waits
doubling: ``vend_tries``, ``vend_next_at``) or ``refused`` (the vending system said no for good: what it said in
``vend_said``, for a supervisor, who may ask again), then ``vended`` once the token is in ``token``. None for every
other payment (the provider's approval carries its own token). No number in clear, no customer text.

Revision ID: v1_vend1
Revises: v1_answered1
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_vend1'
down_revision = 'v1_answered1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_intents') as batch:
        batch.add_column(sa.Column('vend', sa.String(length=12), nullable=True))
        batch.add_column(sa.Column('vend_said', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('vend_tries', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('vend_next_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_payment_intents_vend', ['vend'])


def downgrade() -> None:
    with op.batch_alter_table('payment_intents') as batch:
        batch.drop_index('ix_payment_intents_vend')
        batch.drop_column('vend_next_at')
        batch.drop_column('vend_tries')
        batch.drop_column('vend_said')
        batch.drop_column('vend')
