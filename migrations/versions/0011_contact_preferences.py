"""where notifications go: preferred channel, verified e-mail address and its pending confirmation

Revision ID: p1
Revises: k1
"""
import sqlalchemy as sa
from alembic import op

revision = 'p1'
down_revision = 'k1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('preferences', sa.Column('notify_channel', sa.String(length=16), nullable=True))
    op.add_column('preferences', sa.Column('email', sa.String(length=254), nullable=True))
    op.add_column('preferences', sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('preferences', sa.Column('email_pending', sa.String(length=254), nullable=True))
    op.add_column('preferences', sa.Column('email_code_hash', sa.String(length=255), nullable=True))
    op.add_column('preferences', sa.Column('email_code_expires_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('preferences', sa.Column('email_code_tries', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('preferences') as batch:
        for column in ('email_code_tries', 'email_code_expires_at', 'email_code_hash', 'email_pending',
                       'email_verified_at', 'email', 'notify_channel'):
            batch.drop_column(column)
