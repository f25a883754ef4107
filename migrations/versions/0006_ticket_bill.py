"""disputed bill on kept tickets

Revision ID: c1
Revises: g1
"""
import sqlalchemy as sa
from alembic import op

revision = 'c1'
down_revision = 'g1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('pending_tickets', sa.Column('bill_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('pending_tickets', 'bill_id')
