"""payment_intents.billing_said and provider_answered_at: what billing said refusing an agent's "paid", and
whether the provider ever answered about a payment it may not have got

``billing_said`` keeps billing's answer (its code and message, long numbers masked) when it refuses for good an
agent's settlement posted to it, so a supervisor reads it on the console beside the buttons to post it again or
mark it handled. ``provider_answered_at`` is when the provider last answered a question by our key: a
``not_started`` payment it never answered about all day is flagged (``payment_unanswered``) instead of silently
dropped. No number in clear, no customer text.

Revision ID: v1_money3
Revises: v1_settle2
"""
import sqlalchemy as sa
from alembic import op

revision = 'v1_money3'
down_revision = 'v1_settle2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_intents') as batch:
        batch.add_column(sa.Column('billing_said', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('provider_answered_at', sa.DateTime(timezone=True), nullable=True))
    # Rows never sent before this revision: whether the provider answered about them was not kept. They are taken
    # as answered, so the first worker pass after the upgrade does not flag a backlog of old ones as unanswered.
    op.execute("UPDATE payment_intents SET provider_answered_at = updated_at WHERE status = 'not_started'")


def downgrade() -> None:
    with op.batch_alter_table('payment_intents') as batch:
        batch.drop_column('provider_answered_at')
        batch.drop_column('billing_said')
