"""consent history, STOP list, back-office feed cursors

Revision ID: m1
Revises: h1
"""
import sqlalchemy as sa
from alembic import op

revision = 'm1'
down_revision = 'h1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'consent_changes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('msisdn', sa.String(length=20), nullable=False),
        sa.Column('action', sa.String(length=12), nullable=False),
        sa.Column('topic', sa.String(length=40), nullable=False),
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index('ix_consent_changes_msisdn', 'consent_changes', ['msisdn'])
    op.create_table(
        'notification_stops',
        sa.Column('msisdn', sa.String(length=20), primary_key=True),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('stopped_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        'feed_cursors',
        sa.Column('name', sa.String(length=40), primary_key=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    # Zone broadcasts look subscribers up by topic and scope.
    op.create_index('ix_subscriptions_topic_scope', 'subscriptions', ['topic', 'scope'])
    with op.batch_alter_table('subscriptions') as batch:
        batch.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_column('language')
    op.drop_index('ix_subscriptions_topic_scope', table_name='subscriptions')
    op.drop_table('feed_cursors')
    op.drop_table('notification_stops')
    op.drop_index('ix_consent_changes_msisdn', table_name='consent_changes')
    op.drop_table('consent_changes')
