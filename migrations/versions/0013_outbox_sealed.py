"""outbox secrets sealed apart from the payload (one-time codes: app/storage/outbox_seal.py)

Revision ID: s1
Revises: q1
"""
import sqlalchemy as sa
from alembic import op

revision = 's1'
down_revision = 'q1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('outbox_events', sa.Column('sealed', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_events') as batch:
        batch.drop_column('sealed')
