"""e-mail addresses that unsubscribed from a topic (or from all e-mail) through a link

Revision ID: q1
Revises: p1
"""
import sqlalchemy as sa
from alembic import op

revision = 'q1'
down_revision = 'p1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'email_stops',
        sa.Column('address', sa.String(length=254), nullable=False),
        sa.Column('topic', sa.String(length=40), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('address', 'topic'),
    )


def downgrade() -> None:
    op.drop_table('email_stops')
