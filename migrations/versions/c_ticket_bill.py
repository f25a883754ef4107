"""disputed bill on kept tickets

Revision ID: c1
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = 'c1'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('pending_tickets', sa.Column('bill_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('pending_tickets', 'bill_id')
