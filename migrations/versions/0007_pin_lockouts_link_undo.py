"""PIN lockout ladder and link undo codes

Revision ID: f1
Revises: c1
"""
import sqlalchemy as sa
from alembic import op

revision = 'f1'
down_revision = 'c1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # How many lockouts in a row: the next one lasts longer (15 min, 1 h, 24 h, then an agent).
    op.add_column('pin_credentials', sa.Column('lockouts', sa.Integer(), server_default='0', nullable=False))
    # Hash of the code the account's registered number can use to undo a self-service link.
    op.add_column('account_links', sa.Column('undo_hash', sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column('account_links', 'undo_hash')
    op.drop_column('pin_credentials', 'lockouts')
